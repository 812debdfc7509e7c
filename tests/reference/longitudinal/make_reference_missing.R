# Reference values for rows with missing values in the longitudinal models: lmer and glm
# (na.action = na.omit, R's default) leave out the rows with NA in a column the model uses.
# lme4 + jsonlite only (geeglm with independence working correlation and a gaussian family has
# glm's coefficients, so glm stands for it here).
# Run from the repository root, after make_reference_theta.R (which writes nested_sites.csv):
#   Rscript tests/reference/longitudinal/make_reference_missing.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
d <- read.csv(file.path(out_dir, "nested_sites.csv"), stringsAsFactors = FALSE)
d$subject <- as.character(d$subject)
ctrl <- lmerControl(optimizer = "nloptwrap",
                    optCtrl = list(ftol_abs = 1e-15, ftol_rel = 1e-15, xtol_abs = 1e-13,
                                   xtol_rel = 1e-13, maxeval = 100000))
dropped <- function(fit) unname(as.integer(attr(model.frame(fit), "na.action")) - 1L)  # 0-based
m <- lmer(y ~ x + (1 | site), d, REML = TRUE, control = ctrl)
g <- glm(y ~ x, gaussian, d)
m_y <- lmer(y ~ 1 + (1 | site), d, REML = TRUE, control = ctrl)  # x unused: only NA in y count
res <- list(
  na_per_column = as.list(colSums(is.na(d))),
  lmer_site = list(fixef = unname(fixef(m)), theta = I(unname(getME(m, "theta"))), sigma = sigma(m),
                   loglik = as.numeric(logLik(m)), nobs = nobs(m), dropped = I(dropped(m))),
  lmer_y_only = list(fixef = I(unname(fixef(m_y))), nobs = nobs(m_y), dropped = I(dropped(m_y))),
  glm = list(coef = unname(coef(g)), nobs = nobs(g), dropped = I(dropped(g))),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(out_dir, "missing_reference.json"))
cat("wrote", file.path(out_dir, "missing_reference.json"), "\n")
