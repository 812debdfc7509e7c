# Reference values for nested random intercepts, (1 | batch/cask), with lme4 + lmerTest.
# Run from the repository root:  Rscript tests/reference/longitudinal/make_reference_nested.R
# Reads pastes.csv (written by make_reference.R); writes pastes_unbalanced.csv (a fixed pattern
# of rows dropped, plus a covariate) and nested_reference.json.
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
pastes <- read.csv(file.path(out_dir, "pastes.csv"), stringsAsFactors = FALSE)
i <- seq_len(nrow(pastes))
pu <- pastes[(i * 7) %% 10 >= 3 | i %% 2 == 0, ]
pu$x <- round(cos(seq_len(nrow(pu)) * 1.7), 3)
write.csv(pu, file.path(out_dir, "pastes_unbalanced.csv"), row.names = FALSE)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-13,
                                   xtol_rel = 1e-13, maxeval = 100000))
info <- function(fit) {
  cs <- coef(summary(fit))
  vc <- as.data.frame(VarCorr(fit))
  list(term = rownames(cs), estimate = unname(cs[, "Estimate"]), std_error = unname(cs[, "Std. Error"]),
       df = unname(cs[, "df"]), p_value = unname(cs[, "Pr(>|t|)"]),
       theta = unname(getME(fit, "theta")), sigma = sigma(fit), loglik = as.numeric(logLik(fit)),
       varcorr = list(group = vc$grp, vcov = vc$vcov, sdcor = vc$sdcor), reml = isREML(fit))
}
res <- list(
  pastes_reml = info(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = TRUE, control = ctrl)),
  pastes_ml = info(lmer(strength ~ 1 + (1 | batch/cask), pastes, REML = FALSE, control = ctrl)),
  unbalanced_reml = info(lmer(strength ~ x + (1 | batch/cask), pu, REML = TRUE, control = ctrl)),
  unbalanced_ml = info(lmer(strength ~ x + (1 | batch/cask), pu, REML = FALSE, control = ctrl)),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(out_dir, "nested_reference.json"))
cat("wrote", file.path(out_dir, "nested_reference.json"), "\n")
