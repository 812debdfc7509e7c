# Reference values for the formula front ends (reference levels, offset()), produced with R.
# Run from the repository root:  Rscript tests/reference/formula/make_reference.R
# Data: survival::lung (tests/reference/survival/lung.csv) and MASS::epil
# (tests/reference/longitudinal/epil.csv), with columns derived by fixed rules that the
# tests repeat (no new data file):
#   lung: dose = c("low", "high", "Mid")[(row %% 3) + 1]            (row = 1..n in file order)
#   mgus2 (tests/reference/survival/mgus2.csv): the same rule
#   epil: dose = c("low", "high", "Mid")[(subject %% 3) + 1]; weeks = period + 1
# Levels: factor() in the C locale (LC_COLLATE=C: byte order, "Mid" < "high" < "low"; an
# English locale would give "high" < "low" < "Mid").
suppressPackageStartupMessages({ library(survival); library(cmprsk); library(lme4); library(jsonlite) })
invisible(Sys.setlocale("LC_COLLATE", "C"))
out <- "tests/reference/formula"
lung <- read.csv("tests/reference/survival/lung.csv")
lung$dose <- c("low", "high", "Mid")[(seq_len(nrow(lung)) %% 3) + 1]
epil <- read.csv("tests/reference/longitudinal/epil.csv", stringsAsFactors = FALSE)
epil$dose <- c("low", "high", "Mid")[(epil$subject %% 3) + 1]
epil$weeks <- epil$period + 1

coefs <- function(fit, b = coef(fit), se = sqrt(diag(as.matrix(vcov(fit))))) {
  list(term = I(names(b)), estimate = I(unname(b)), std_error = I(unname(se)))
}
cox_entry <- function(fit, formula) {
  c(list(formula = formula, n = fit$n, nevent = fit$nevent, loglik = fit$loglik,
         concordance = unname(fit$concordance["concordance"])), coefs(fit))
}
cases <- list()
# Cox: levels from strings (C-locale sort), declared order, an explicit reference
d <- lung; d$dose <- factor(d$dose)
cases$cox_string <- c(cox_entry(coxph(Surv(time, status) ~ age + dose, data = d), "age + dose"),
                      list(levels = levels(d$dose)))
d$dose <- factor(lung$dose, levels = c("low", "Mid", "high"))
cases$cox_declared <- c(cox_entry(coxph(Surv(time, status) ~ age + dose, data = d), "age + dose"),
                        list(levels = levels(d$dose)))
d$dose <- relevel(factor(lung$dose), ref = "low")
cases$cox_reference <- c(cox_entry(coxph(Surv(time, status) ~ age + dose, data = d), "age + dose"),
                         list(levels = levels(d$dose)))
# Cox with an offset (coefficient fixed at 1)
cases$cox_offset <- cox_entry(coxph(Surv(time, status) ~ sex + offset(log(age)), data = lung),
                              "sex + offset(log(age))")
fit <- coxph(Surv(time, status) ~ sex + offset(log(age)) + strata(ph.ecog), data = lung, robust = TRUE)
cases$cox_offset_strata_robust <- c(cox_entry(fit, "sex + offset(log(age))"),
                                    list(robust_se = I(unname(sqrt(diag(fit$var)))),
                                         naive_se = I(unname(sqrt(diag(fit$naive.var))))))
# Fine-Gray (cmprsk::crr on the model matrix R builds from the factor)
mg <- read.csv("tests/reference/survival/mgus2.csv", stringsAsFactors = FALSE)
mg$dose <- factor(c("low", "high", "Mid")[(seq_len(nrow(mg)) %% 3) + 1])
cov <- model.matrix(~ age + dose, data = mg)[, -1]
fg <- crr(mg$etime, mg$event, cov, failcode = 1, cencode = 0, gtol = 1e-10, maxiter = 100)
cases$crr_string <- list(formula = "age + dose", levels = levels(mg$dose), term = I(names(fg$coef)),
                         estimate = I(unname(fg$coef)), std_error = I(unname(sqrt(diag(fg$var)))))

# longitudinal: lm (= GEE gaussian, independence: same point estimates) and lmer (REML)
e <- epil; e$dose <- factor(e$dose)
cases$lm_string <- c(list(formula = "y ~ lage + dose", levels = levels(e$dose)),
                     coefs(lm(y ~ lage + dose, data = e)))
cases$lmer_string <- c(list(formula = "y ~ lage + dose", groups = "subject", levels = levels(e$dose)),
                       { m <- lmer(y ~ lage + dose + (1 | subject), data = e, REML = TRUE); coefs(m, fixef(m)) })
e$dose <- factor(epil$dose, levels = c("low", "Mid", "high"))
cases$lm_declared <- c(list(formula = "y ~ lage + dose", levels = levels(e$dose)),
                       coefs(lm(y ~ lage + dose, data = e)))
# Poisson with log link and offsets: glm (= GEE poisson, independence: same point estimates)
# and the cluster-robust (sandwich) SE of GEE with independence working correlation, by hand
# (A^-1 M A^-1, A = X'WX, M = sum over subjects of U_i U_i', U_i = sum of x (y - mu)): what
# geepack gives for independence (the scale cancels)
sandwich_se <- function(fit, cluster) {
  X <- model.matrix(fit); mu <- fitted(fit)
  A <- crossprod(X * mu, X)
  U <- rowsum(X * (fit$y - mu), cluster)
  B <- solve(A)
  sqrt(diag(B %*% crossprod(U) %*% B))
}
fit <- glm(y ~ trt + lage + offset(log(weeks)), family = poisson, data = epil)
cases$glm_offset <- c(list(formula = "y ~ trt + lage + offset(log(weeks))", family = "poisson"),
                      coefs(fit), list(robust_se = I(unname(sandwich_se(fit, epil$subject)))))
cases$glm_two_offsets <- c(list(formula = "y ~ trt + lage + offset(lbase) + offset(log(weeks))",
                                family = "poisson"),
                           coefs(glm(y ~ trt + lage + offset(lbase) + offset(log(weeks)),
                                     family = poisson, data = epil)))

meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
             lme4 = as.character(packageVersion("lme4")), collate = Sys.getlocale("LC_COLLATE"))
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(out, "formula.json"))
