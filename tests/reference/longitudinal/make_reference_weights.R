# Reference values for lmm(weights=): lmer's prior weights (residual variance sigma^2 / w).
# lme4 + jsonlite only. Run from the repository root (after make_reference.R):
#   Rscript tests/reference/longitudinal/make_reference_weights.R
# Weights are a fixed pattern w = 1 + (row %% 3) / 2 (row numbered from 1). Also recorded:
# what lmer does with a zero, a negative and a missing weight (cohort refuses the first two:
# lmer refuses negative weights and keeps zero-weight rows, which still count in nobs and the
# REML degrees of freedom; a missing weight is a missing value, its row left out by na.omit).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
sleep <- read.csv(file.path(out_dir, "sleepstudy.csv"), stringsAsFactors = FALSE)
pastes <- read.csv(file.path(out_dir, "pastes.csv"), stringsAsFactors = FALSE)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-13,
                                   xtol_rel = 1e-13, maxeval = 100000))
sleep$w <- 1 + (seq_len(nrow(sleep)) %% 3) / 2
pastes$w <- 1 + (seq_len(nrow(pastes)) %% 3) / 2
info <- function(fit) {
  cs <- coef(summary(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  list(estimate = I(unname(cs[, "Estimate"])), std_error = I(unname(cs[, "Std. Error"])),
       theta = I(unname(getME(fit, "theta"))), sigma = sigma(fit), loglik = as.numeric(logLik(fit)),
       nobs = nobs(fit), condval = re$condval, condsd = re$condsd, fitted = unname(fitted(fit)))
}
sleep_na <- sleep; sleep_na$w[5] <- NA
sleep_zero <- sleep; sleep_zero$w[5] <- 0
sleep_neg <- sleep; sleep_neg$w[5] <- -1
neg <- tryCatch(lmer(Reaction ~ Days + (Days | Subject), sleep_neg, weights = w), error = conditionMessage)
res <- list(
  sleep_reml = info(lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = TRUE, control = ctrl)),
  sleep_ml = info(lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = FALSE, control = ctrl)),
  pastes_reml = info(lmer(strength ~ 1 + (1 | batch/cask), pastes, weights = w, REML = TRUE, control = ctrl)),
  sleep_na_weight = info(lmer(Reaction ~ Days + (Days | Subject), sleep_na, weights = w, REML = TRUE,
                              control = ctrl)),
  zero_weight_nobs = nobs(lmer(Reaction ~ Days + (Days | Subject), sleep_zero, weights = w, control = ctrl)),
  negative_weight_error = neg,
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(out_dir, "weights_reference.json"))
cat("wrote", file.path(out_dir, "weights_reference.json"), "\n")
