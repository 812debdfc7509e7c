# Reference values for cohort.longitudinal, produced with R (lme4, lmerTest, geepack).
# Run from the repository root:  Rscript tests/reference/longitudinal/make_reference.R
# Writes the datasets (CSV) and one JSON file of results beside this script.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(nlme); library(geepack)
  library(jsonlite); library(splines); library(MASS)
})
out_dir <- "tests/reference/longitudinal"
wcsv <- function(d, name) write.csv(d, file.path(out_dir, name), row.names = FALSE)

sleep <- as.data.frame(lme4::sleepstudy); sleep$Subject <- as.character(sleep$Subject)
wcsv(sleep, "sleepstudy.csv")
orth <- as.data.frame(nlme::Orthodont)
orth <- data.frame(distance = orth$distance, age = orth$age,
                   Subject = as.character(orth$Subject), Sex = as.character(orth$Sex))
wcsv(orth, "orthodont.csv")
dye2 <- as.data.frame(lme4::Dyestuff2); dye2$Batch <- as.character(dye2$Batch)
wcsv(dye2, "dyestuff2.csv")
pastes <- as.data.frame(lme4::Pastes)
pastes <- data.frame(strength = pastes$strength, batch = as.character(pastes$batch),
                     cask = as.character(pastes$cask))
wcsv(pastes, "pastes.csv")
# unbalanced, irregular: drop a deterministic pattern of visits from sleepstudy (MAR)
drop <- (seq_len(nrow(sleep)) * 7) %% 10 < 3 & sleep$Days > 0
sleep_mis <- sleep[!drop, ]
wcsv(sleep_mis, "sleepstudy_missing.csv")

fit_info <- function(fit, data, newdata = NULL) {
  cs <- coef(summary(fit))
  est <- cs[, "Estimate"]; se <- cs[, "Std. Error"]
  dfs <- if ("df" %in% colnames(cs)) cs[, "df"] else rep(NA, nrow(cs))
  pv <- if ("Pr(>|t|)" %in% colnames(cs)) cs[, "Pr(>|t|)"] else rep(NA, nrow(cs))
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  re_out <- list(group = as.character(re$grpvar), term = as.character(re$term),
                 level = as.character(re$grp), condval = re$condval, condsd = re$condsd)
  ll <- logLik(fit)
  list(
    formula = deparse(formula(fit)), reml = isREML(fit),
    fixef = list(term = rownames(cs), estimate = unname(est), std_error = unname(se),
                 df = unname(dfs), statistic = unname(cs[, "t value"]), p_value = unname(pv),
                 conf_low = unname(est - qt(0.975, dfs) * se),
                 conf_high = unname(est + qt(0.975, dfs) * se)),
    vcov = unname(as.matrix(vcov(fit))),
    varcorr = list(group = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    theta = unname(getME(fit, "theta")), sigma = sigma(fit),
    loglik = as.numeric(ll), loglik_df = attr(ll, "df"), aic = AIC(fit), bic = BIC(fit),
    deviance_criterion = unname(if (isREML(fit)) fit@devcomp$cmp["REML"] else fit@devcomp$cmp["dev"]),
    nobs = nobs(fit), singular = isSingular(fit),
    ranef = re_out,
    fitted = unname(fitted(fit)),
    fitted_fixed = unname(predict(fit, re.form = NA)),
    time_s = NA
  )
}

# tight optimiser settings, so that the reference is the optimum rather than lme4's default stop
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-13,
                                   xtol_rel = 1e-13, maxeval = 100000))
res <- list()
m <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = TRUE, control = ctrl)
res$sleep_reml <- fit_info(m, sleep)
m_ml <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE, control = ctrl)
res$sleep_ml <- fit_info(m_ml, sleep)
res$sleep_diag <- fit_info(lmer(Reaction ~ Days + (Days || Subject), sleep, REML = TRUE, control = ctrl), sleep)
res$sleep_int <- fit_info(lmer(Reaction ~ Days + (1 | Subject), sleep, REML = TRUE, control = ctrl), sleep)
res$sleep_missing <- fit_info(lmer(Reaction ~ Days + (Days | Subject), sleep_mis, REML = TRUE, control = ctrl), sleep_mis)
res$sleep_ns <- fit_info(lmer(Reaction ~ ns(Days, df = 3) + (Days | Subject), sleep, REML = TRUE, control = ctrl), sleep)
res$orth_reml <- fit_info(lmer(distance ~ age * Sex + (age | Subject), orth, REML = TRUE, control = ctrl), orth)
res$orth_ml <- fit_info(lmer(distance ~ age + Sex + (age | Subject), orth, REML = FALSE, control = ctrl), orth)
res$dye2 <- fit_info(lmer(Yield ~ 1 + (1 | Batch), dye2, REML = TRUE, control = ctrl), dye2)
res$pastes <- fit_info(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = TRUE, control = ctrl), pastes)

# likelihood-ratio tests (anova refits with ML)
m0 <- lmer(Reaction ~ Days + (1 | Subject), sleep, REML = TRUE, control = ctrl)
a <- anova(m0, m, refit = TRUE)
res$anova_sleep <- list(chisq = a$Chisq[2], df = a$Df[2], p_value = a$`Pr(>Chisq)`[2],
                        loglik = a$logLik, aic = a$AIC, bic = a$BIC, npar = a$npar)
m00 <- lmer(Reaction ~ 1 + (Days | Subject), sleep, REML = FALSE, control = ctrl)
a2 <- anova(m00, m_ml)
res$anova_sleep_fixed <- list(chisq = a2$Chisq[2], df = a2$Df[2], p_value = a2$`Pr(>Chisq)`[2],
                              loglik = a2$logLik, aic = a2$AIC, bic = a2$BIC, npar = a2$npar)

# natural spline basis (R splines::ns), knots from the data, inside and outside the range
xs <- c(-1, 0, 0.5, 1, 2.5, 3, 4.2, 7, 9, 11)
b <- ns(sleep$Days, df = 3)
res$ns_basis <- list(x = xs, basis = unname(predict(b, xs)), knots = unname(attr(b, "knots")),
                     boundary = unname(attr(b, "Boundary.knots")))
res$ns_basis_int <- list(x = xs, basis = unname(ns(xs, df = 4, intercept = TRUE)))

# GEE (geepack)
data(ohio, package = "geepack"); wcsv(ohio, "ohio.csv")
data(dietox, package = "geepack")
diet <- data.frame(Weight = dietox$Weight, Time = dietox$Time, Cu = as.character(dietox$Cu),
                   Pig = dietox$Pig)
wcsv(diet, "dietox.csv")
epil <- MASS::epil[, c("y", "lbase", "trt", "lage", "V4", "subject", "period")]
epil$trt <- as.character(epil$trt)
wcsv(epil, "epil.csv")
gee_info <- function(fit) {
  s <- summary(fit)$coefficients
  list(term = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std.err"]),
       naive_std_error = unname(sqrt(diag(fit$geese$vbeta.naiv))),
       wald = unname(s[, "Wald"]), p_value = unname(s[, "Pr(>|W|)"]),
       alpha = unname(fit$geese$alpha), scale = unname(fit$geese$gamma))
}
gee <- list()
for (cs in c("independence", "exchangeable", "ar1", "unstructured")) {
  gee[[paste0("ohio_", cs)]] <- gee_info(geeglm(resp ~ age + smoke, id = id, data = ohio,
                                                  family = binomial, corstr = cs))
  gee[[paste0("dietox_", cs)]] <- gee_info(geeglm(Weight ~ Time + Cu, id = Pig, data = diet,
                                                    family = gaussian, corstr = cs))
  gee[[paste0("epil_", cs)]] <- gee_info(geeglm(y ~ lbase + trt + lage + V4, id = subject,
                                                  data = epil, family = poisson, corstr = cs))
}
res$gee <- gee
res$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     lmerTest = as.character(packageVersion("lmerTest")),
                     geepack = as.character(packageVersion("geepack")))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(out_dir, "reference.json"))
cat("wrote", file.path(out_dir, "reference.json"), "\n")
