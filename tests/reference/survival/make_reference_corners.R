# Reference values for corner cases of cohort.survival (issue 14, item 3), with R's survival and cmprsk.
#
# Run from the repository root:  Rscript tests/reference/survival/make_reference_corners.R
# Reads the datasets written by make_reference.R (mgus2.csv, lung.csv, veteran.csv) and
# writes corners.json beside this script. R is not available in CI: the output is committed.
for (pkg in c("survival", "cmprsk", "jsonlite")) suppressPackageStartupMessages(library(pkg, character.only = TRUE))
out <- "tests/reference/survival"
mg <- read.csv(file.path(out, "mgus2.csv"))
lung <- read.csv(file.path(out, "lung.csv"))
vet <- read.csv(file.path(out, "veteran.csv"))

# ---- Fine-Gray with rows at time 0 (events of each cause and censorings) ----------------
# mgus2 with the follow-up time of every 25th id set to 0 (the test does the same)
mg0 <- mg
mg0$etime[mg0$id %% 25 == 0] <- 0
cov <- cbind(age = mg0$age, male = mg0$male, hgb = mg0$hgb)
fgres <- function(f) list(term = names(f$coef), estimate = unname(f$coef), std_error = unname(sqrt(diag(f$var))),
                          loglik = f$loglik, converged = f$converged)
zero_status <- table(factor(mg0$event[mg0$etime == 0], levels = 0:2))
fine_gray_time0 <- list(
  zero_id_modulo = 25, zero_status = as.list(setNames(as.integer(zero_status), names(zero_status))),
  cause1 = fgres(crr(mg0$etime, mg0$event, cov, failcode = 1, cencode = 0, gtol = 1e-8, maxiter = 100)),
  cause2 = fgres(crr(mg0$etime, mg0$event, cov, failcode = 2, cencode = 0, gtol = 1e-10, maxiter = 100))
)

# ---- Kaplan-Meier with fractional case weights: survfit's default robust (IJ) variance ------
lung$w <- 0.5 + (seq_len(nrow(lung)) %% 4) / 3   # non-integer weights
lung$wi <- 1 + (seq_len(nrow(lung)) %% 3)         # integer weights: Greenwood, as before
km_ref <- function(fit) {
  s <- summary(fit, censored = TRUE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else sub(".*=", "", as.character(s$strata))
  list(group = grp, time = s$time, n_risk = s$n.risk, n_event = s$n.event, survival = s$surv,
       std_error = s$std.err, conf_low = s$lower, conf_high = s$upper)
}
small <- data.frame(t = c(1, 2, 2, 3, 4, 5), e = c(1, 0, 1, 1, 0, 1), w = c(0.5, 1.5, 1, 2.5, 1, 0.7))
km_weights <- list(
  weight_formula = "0.5 + (row %% 4) / 3, row = 1..n", integer_weight_formula = "1 + (row %% 3)",
  fractional = km_ref(survfit(Surv(time, status) ~ 1, data = lung, weights = w)),
  fractional_sex = km_ref(survfit(Surv(time, status) ~ sex, data = lung, weights = w)),
  fractional_loglog = km_ref(survfit(Surv(time, status) ~ 1, data = lung, weights = w, conf.type = "log-log")),
  fractional_greenwood = km_ref(survfit(Surv(time, status) ~ 1, data = lung, weights = w, robust = FALSE)),
  integer = km_ref(survfit(Surv(time, status) ~ sex, data = lung, weights = wi)),
  # (entry, time] data with non-integer weights: survfit 3.5.3 uses the robust variance too, each row
  # its own cluster (its help page says robust=FALSE there; robust=TRUE explicitly asks for id=)
  entry_formula = "floor(time / 4)",
  fractional_entry = km_ref(survfit(Surv(floor(time / 4), time, status) ~ 1, data = lung, weights = w)),
  # the curve reaches 0: the robust std.err is 0 there (Greenwood's is NaN)
  to_zero_data = small, to_zero = km_ref(survfit(Surv(t, e) ~ 1, data = small, weights = w)),
  to_zero_greenwood = km_ref(survfit(Surv(t, e) ~ 1, data = small))
)

# ---- concordance counts with tied event times and tied predictors (tied.y vs tied.xy) -------
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
conc <- function(fit) as.list(fit$concordance[c("concordant", "discordant", "tied.x", "tied.y", "tied.xy",
                                                "concordance")])
vet$w <- 0.5 + (seq_len(nrow(vet)) %% 4) / 3
concordance <- list(
  lung_sex_ecog = conc(coxph(Surv(time, status) ~ sex + ph.ecog, data = lung, control = ctl)),
  veteran_trt = conc(coxph(Surv(time, status) ~ trt, data = vet, control = ctl)),
  veteran_trt_weights = conc(coxph(Surv(time, status) ~ trt, data = vet, weights = w, control = ctl)),
  veteran_celltype_strata = conc(coxph(Surv(time, status) ~ celltype + strata(trt), data = vet, control = ctl))
)

# ---- zero, negative and missing case weights: R refuses them --------------------------------
refusal <- function(expr) tryCatch({ expr; "accepted" }, error = function(e) conditionMessage(e))
lz <- lung; lz$w[1:3] <- 0
ln <- lung; ln$w[5] <- -1
weights_refused <- list(
  survfit_zero = refusal(survfit(Surv(time, status) ~ 1, data = lz, weights = w)),
  survfit_negative = refusal(survfit(Surv(time, status) ~ 1, data = ln, weights = w)),
  coxph_zero = refusal(coxph(Surv(time, status) ~ age, data = lz, weights = w)),
  coxph_negative = refusal(coxph(Surv(time, status) ~ age, data = ln, weights = w))
)

writeLines(toJSON(list(fine_gray_time0 = fine_gray_time0, km_weights = km_weights, concordance = concordance,
                       weights_refused = weights_refused),
                  digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
           file.path(out, "corners.json"))
cat("reference written to", file.path(out, "corners.json"), "\n")
