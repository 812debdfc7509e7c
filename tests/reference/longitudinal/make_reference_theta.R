# Reference values for lme4's theta (getME(fit, "theta")): its order and names, with the
# variance components, ngrps, conditional modes (ranef, condVar) and fitted values of nested
# random intercepts (1 | outer/inner), and theta of (Days | Subject) and (Days || Subject).
# lme4 + jsonlite only.
# Run from the repository root:  Rscript tests/reference/longitudinal/make_reference_theta.R
# Reads pastes.csv and sleepstudy.csv (written by make_reference.R); writes nested_sites.csv
# (simulated below with set.seed: subjects numbered 1..k within each site, so the inner labels
# repeat across sites; a site variance larger than the subject variance, the reverse of Pastes;
# some NA in the covariate and the response) and theta_reference.json.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
pastes <- read.csv(file.path(out_dir, "pastes.csv"), stringsAsFactors = FALSE)
sleep <- read.csv(file.path(out_dir, "sleepstudy.csv"), stringsAsFactors = FALSE)

set.seed(20261202)
n_subj <- c(4, 7, 5, 9, 6, 8)
d <- do.call(rbind, lapply(seq_along(n_subj), function(s) {
  do.call(rbind, lapply(seq_len(n_subj[s]), function(j) {
    k <- sample(2:5, 1)
    data.frame(site = paste0("S", s), subject = as.character(j), x = round(rnorm(k), 3))
  }))
}))
site_eff <- rnorm(length(n_subj), sd = 2)
names(site_eff) <- paste0("S", seq_along(n_subj))
subj_key <- paste(d$site, d$subject)
subj_eff <- rnorm(length(unique(subj_key)), sd = 0.7)
names(subj_eff) <- unique(subj_key)
d$y <- round(10 + 0.5 * d$x + site_eff[d$site] + subj_eff[subj_key] + rnorm(nrow(d)), 3)
d$y[c(3, 17)] <- NA
d$x[c(8, 30, 41)] <- NA
d <- d[, c("y", "x", "site", "subject")]
write.csv(d, file.path(out_dir, "nested_sites.csv"), row.names = FALSE, na = "")

ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-13,
                                   xtol_rel = 1e-13, maxeval = 100000))
named <- function(v) list(names = I(names(v)), values = I(unname(v)))
info <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  list(ranef = list(group = as.character(re$grpvar), term = as.character(re$term),
                    level = as.character(re$grp), condval = re$condval, condsd = re$condsd),
       fitted = unname(fitted(fit)),theta = named(getME(fit, "theta")), ngrps = named(ngrps(fit)),
       varcorr = list(group = vc$grp, var1 = vc$var1, vcov = vc$vcov, sdcor = vc$sdcor),
       fixef = named(fixef(fit)), sigma = sigma(fit), loglik = as.numeric(logLik(fit)),
       nobs = nobs(fit), n_dropped = length(attr(model.frame(fit), "na.action")))
}
res <- list(
  pastes_reml = info(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = TRUE, control = ctrl)),
  pastes_ml = info(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = FALSE, control = ctrl)),
  sites_reml = info(lmer(y ~ x + (1 | site/subject), d, REML = TRUE, control = ctrl)),
  sites_ml = info(lmer(y ~ x + (1 | site/subject), d, REML = FALSE, control = ctrl)),
  sleep_unstructured = info(lmer(Reaction ~ Days + (Days | Subject), sleep, control = ctrl)),
  sleep_diagonal = info(lmer(Reaction ~ Days + (Days || Subject), sleep, control = ctrl)),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(out_dir, "theta_reference.json"))
cat("wrote", file.path(out_dir, "theta_reference.json"), "\n")
