# Reference values for rows with missing values in cohort.survival (issue 14, item 3): R's
# default na.action = na.omit drops rows with NA in any variable used (time and status too).
#
# Run from the repository root:  Rscript tests/reference/survival/make_reference_missing.R
# Writes lung_na.csv (survival::lung as shipped, with its NAs, status 0/1, and a copy of time,
# time_na, set to NA on every 20th row) and missing.json beside this script.
# R is not available in CI: the output is committed.
for (pkg in c("survival", "cmprsk", "jsonlite")) suppressPackageStartupMessages(library(pkg, character.only = TRUE))
out <- "tests/reference/survival"
lung <- survival::lung
lung$status <- lung$status - 1L
lung$time_na <- lung$time
lung$time_na[seq_len(nrow(lung)) %% 20 == 0] <- NA
write.csv(lung, file.path(out, "lung_na.csv"), row.names = FALSE, na = "")

ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
cox_ref <- function(fit) list(
  n = fit$n, nevent = fit$nevent, n_deleted = length(fit$na.action),
  deleted_rows0 = as.integer(fit$na.action) - 1L,  # 0-based row numbers of the rows left out
  term = names(coef(fit)), estimate = unname(coef(fit)), std_error = unname(sqrt(diag(vcov(fit)))),
  loglik = fit$loglik
)
na_per_column <- lapply(lung, function(x) sum(is.na(x)))

km_ref <- function(fit) {
  s <- summary(fit, censored = TRUE)
  list(n = as.integer(fit$n), time = s$time, n_risk = s$n.risk, n_event = s$n.event, survival = s$surv,
       std_error = s$std.err, n_deleted = length(fit$na.action))
}
lr <- function(t) list(statistic = unname(t$chisq), n = as.integer(t$n), n_deleted = length(t$na.action))

res <- list(
  na_per_column = na_per_column,
  cox_age_ecog_wtloss = cox_ref(coxph(Surv(time, status) ~ age + ph.ecog + wt.loss, data = lung, control = ctl)),
  cox_time_na = cox_ref(coxph(Surv(time_na, status) ~ age + ph.ecog, data = lung, control = ctl)),
  km_time_na = km_ref(survfit(Surv(time_na, status) ~ 1, data = lung)),
  km_time_na_by_ecog = km_ref(survfit(Surv(time_na, status) ~ ph.ecog, data = lung)),
  logrank_time_na_sex = lr(survdiff(Surv(time_na, status) ~ sex, data = lung))
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), file.path(out, "missing.json"))
