# Reference values for gee corner cases (offset, prior weights, missing values), produced with
# geepack::geeglm. Run from the repository root:
#   Rscript tests/reference/longitudinal/make_reference_gee_corners.R
# Writes gee_rates.csv (a Poisson rate data set simulated here with set.seed: 80 participants,
# up to 5 yearly visits, event counts over a follow-up time `years`, prior weights `w`; and
# gee_rates_na.csv, the same with missing values in y, dose, years, w) and gee_corners_reference.json
# (with weighted fits of ohio.csv and dietox.csv, the weights drawn here stored in it).
suppressPackageStartupMessages({ library(geepack); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
set.seed(20261202)
K <- 80; m <- 5
d <- data.frame(id = rep(1:K, each = m), visit = rep(1:m, K))
d$dose <- rep(sample(c("low", "mid", "high"), K, replace = TRUE), each = m)
d$age <- round(rep(rnorm(K, 50, 8), each = m) + d$visit - 1, 1)
d$years <- round(runif(nrow(d), 0.3, 2.5), 3)
u <- rep(rnorm(K, 0, 0.4), each = m)
d$y <- rpois(nrow(d), d$years * exp(-0.5 + 0.02 * (d$age - 50) + 0.3 * (d$dose == "high") + u))
d$w <- round(runif(nrow(d), 0.5, 3), 3)
d <- d[!(seq_len(nrow(d)) %% 9 == 4), ]  # some missed visits (gaps in `visit`)
d$z <- d$w
d$z[c(3, 40, 41, 200)] <- 0  # zero prior weights (geeglm keeps these rows)
write.csv(d, file.path(out_dir, "gee_rates.csv"), row.names = FALSE)
dn <- d
dn$y[c(5, 77)] <- NA; dn$dose[c(12, 150)] <- NA; dn$years[c(30)] <- NA; dn$w[c(31, 260)] <- NaN
dn$age[c(100)] <- NA
write.csv(dn, file.path(out_dir, "gee_rates_na.csv"), row.names = FALSE, na = "")

form <- y ~ age + dose + offset(log(years))
# geeglm(na.action = na.omit) stops ("nrow(zsca) and length(y) not match") when a covariate or
# the offset is NA (its scale model frame y ~ 1 drops only rows with NA in y or the weights), so
# for data = "rates_na" the rows are left out beforehand exactly as na.omit does on the columns
# the model uses (`dropped`); "rates_na_yw" (NA only in y and w) goes through geeglm's own na.omit.
fit_case <- function(data, corstr, weights = NULL, tight = FALSE) {
  d <- read.csv(file.path(out_dir, if (data == "rates") "gee_rates.csv" else "gee_rates_na.csv"),
                stringsAsFactors = FALSE, na.strings = c("", "NA"))
  omitted <- integer(0)
  if (data == "rates_na") {
    used <- c("y", "age", "dose", "years", "id", "visit", weights)
    omitted <- which(!complete.cases(d[used]))
    d <- d[-omitted, ]
  } else if (data == "rates_na_yw") {
    d[c("age", "dose", "years")] <- read.csv(file.path(out_dir, "gee_rates.csv"))[c("age", "dose", "years")]
  }
  ctrl <- if (tight) geese.control(epsilon = 1e-10, maxit = 200) else geese.control()
  args <- list(formula = form, family = poisson, data = d, id = quote(id), waves = quote(visit),
               corstr = corstr, control = ctrl, na.action = na.omit)
  if (!is.null(weights)) args$weights <- as.name(weights)
  fit <- do.call(geeglm, args)
  s <- summary(fit)$coefficients
  if (data == "rates_na_yw") omitted <- as.integer(attr(fit$model, "na.action"))
  list(data = data, formula = "y ~ age + dose + offset(log(years))", id = "id", waves = "visit",
       family = "poisson", corstr = corstr, weights = weights,
       tol = if (tight) 1e-10 else 1e-4, maxiter = if (tight) 200 else 25,
       term = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std.err"]),
       naive_std_error = unname(sqrt(diag(fit$geese$vbeta.naiv))),
       alpha = unname(fit$geese$alpha), scale = unname(fit$geese$gamma),
       error = fit$geese$error, nobs = nrow(fit$model),
       dropped = I(unname(omitted) - 1L))  # 0-based rows of the csv
}
cases <- list()
for (cs in c("exchangeable", "ar1")) {
  for (tight in c(FALSE, TRUE)) {
    sfx <- if (tight) "_tight" else ""
    cases[[paste0("offset_", cs, sfx)]] <- fit_case("rates", cs, tight = tight)
    cases[[paste0("weights_", cs, sfx)]] <- fit_case("rates", cs, weights = "w", tight = tight)
    cases[[paste0("zero_weights_", cs, sfx)]] <- fit_case("rates", cs, weights = "z", tight = tight)
    cases[[paste0("missing_", cs, sfx)]] <- fit_case("rates_na", cs, tight = tight)
    cases[[paste0("missing_weights_", cs, sfx)]] <- fit_case("rates_na", cs, weights = "w", tight = tight)
    cases[[paste0("missing_yw_", cs, sfx)]] <- fit_case("rates_na_yw", cs, weights = "w", tight = tight)
  }
}
res <- list(versions = list(R = R.version.string, geepack = as.character(packageVersion("geepack"))))

# prior weights with the other families (glm.fit's start differs: binomial mustart uses w):
# ohio (binomial) and dietox (gaussian), written by make_reference.R, with weights drawn here
# (stored as drawn_weights[[nm]], one per row of the csv)
wts <- list()
for (nm in c("ohio", "dietox")) wts[[nm]] <- round(runif(nrow(read.csv(file.path(out_dir, paste0(nm, ".csv")))), 0.2, 4), 3)
other <- list(
  ohio = list(formula = "resp ~ age + smoke", id = "id", family = "binomial", waves = "age"),
  dietox = list(formula = "Weight ~ Time + Cu", id = "Pig", family = "gaussian", waves = "Time"))
for (nm in names(other)) for (cs in c("exchangeable", "ar1")) {
  m <- other[[nm]]
  d <- read.csv(file.path(out_dir, paste0(nm, ".csv")), stringsAsFactors = FALSE)
  d$w <- wts[[nm]]
  fit <- geeglm(as.formula(m$formula), family = get(m$family), data = d, id = d[[m$id]],
                waves = d[[m$waves]], weights = d$w, corstr = cs,
                control = geese.control(epsilon = 1e-10, maxit = 200))
  s <- summary(fit)$coefficients
  cases[[paste("weights", nm, cs, sep = "_")]] <- list(
    data = nm, formula = m$formula, id = m$id, waves = m$waves,
    family = m$family, corstr = cs, weights = "w", tol = 1e-10, maxiter = 200,
    term = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std.err"]),
    naive_std_error = unname(sqrt(diag(fit$geese$vbeta.naiv))),
    alpha = unname(fit$geese$alpha), scale = unname(fit$geese$gamma),
    error = fit$geese$error, nobs = nrow(d), dropped = I(integer(0)))
}
res$cases <- cases
res$drawn_weights <- wts
res <- res[c("cases", "drawn_weights", "versions")]
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = FALSE),
           file.path(out_dir, "gee_corners_reference.json"))
cat("wrote", file.path(out_dir, "gee_corners_reference.json"), length(cases), "cases\n")
