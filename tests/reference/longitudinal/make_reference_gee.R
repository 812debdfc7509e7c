# Reference values for cohort.longitudinal.gee, produced with geepack::geeglm.
# Run from the repository root:  Rscript tests/reference/longitudinal/make_reference_gee.R
# Reads ohio.csv, dietox.csv, epil.csv (written by make_reference.R), writes the unbalanced
# variants (*_mis.csv: a deterministic pattern of missed visits, gaps included) and
# gee_reference.json: one entry per case with its specification and geepack's results.
suppressPackageStartupMessages({ library(geepack); library(jsonlite) })
out_dir <- "tests/reference/longitudinal"
rcsv <- function(name) read.csv(file.path(out_dir, name), stringsAsFactors = FALSE)
wcsv <- function(d, name) write.csv(d, file.path(out_dir, name), row.names = FALSE)

data_sets <- list(ohio = rcsv("ohio.csv"), dietox = rcsv("dietox.csv"), epil = rcsv("epil.csv"))
# unbalanced: drop visits by a fixed rule (first visits too, so waves need not start at 1)
miss <- function(d, wave, keep_first = FALSE) {
  i <- seq_len(nrow(d))
  drop <- (i * 7) %% 10 < 3
  if (keep_first) drop <- drop & d[[wave]] > min(d[[wave]])
  d[!drop, ]
}
data_sets$ohio_mis <- miss(data_sets$ohio, "age")
data_sets$dietox_mis <- miss(data_sets$dietox, "Time", keep_first = TRUE)
data_sets$epil_mis <- miss(data_sets$epil, "period")
for (nm in c("ohio_mis", "dietox_mis", "epil_mis")) wcsv(data_sets[[nm]], paste0(nm, ".csv"))

models <- list(
  ohio = list(formula = "resp ~ age + smoke", id = "id", family = "binomial", wave = "age"),
  dietox = list(formula = "Weight ~ Time + Cu", id = "Pig", family = "gaussian", wave = "Time"),
  epil = list(formula = "y ~ lbase + trt + lage + V4", id = "subject", family = "poisson", wave = "period")
)

# unstructured by waves: geeglm(waves=) crashes (segfault) for unstructured when a cluster misses
# a wave, so give the pair-of-waves design as a user-defined zcor (waves = positions)
zcor_by_waves <- function(d, id, wave) {
  w <- as.integer(factor(d[[wave]])); L <- max(w)
  cl <- split(w, factor(d[[id]], levels = unique(d[[id]])))
  pairs <- do.call(rbind, lapply(cl, function(v) {
    if (length(v) < 2) return(NULL)
    cp <- combn(length(v), 2); cbind(pmin(v[cp[1, ]], v[cp[2, ]]), pmax(v[cp[1, ]], v[cp[2, ]]))
  }))
  allp <- t(combn(L, 2))
  z <- matrix(0, nrow(pairs), nrow(allp))
  for (k in seq_len(nrow(allp))) z[pairs[, 1] == allp[k, 1] & pairs[, 2] == allp[k, 2], k] <- 1
  stopifnot(all(colSums(z) > 0))
  z
}

fit_case <- function(data, corstr, waves = FALSE, tight = FALSE) {
  base <- sub("_mis$", "", data)
  m <- models[[base]]; d <- data_sets[[data]]
  ctrl <- if (tight) geese.control(epsilon = 1e-10, maxit = 200) else geese.control()
  fam <- get(m$family)
  args <- list(formula = as.formula(m$formula), family = fam, data = d, id = d[[m$id]],
               control = ctrl)
  if (waves && corstr == "unstructured") {
    args$corstr <- "userdefined"; args$zcor <- zcor_by_waves(d, m$id, m$wave)
  } else {
    args$corstr <- corstr
    if (waves) args$waves <- d[[m$wave]]
  }
  fit <- do.call(geeglm, args)
  s <- summary(fit)$coefficients
  list(data = data, formula = m$formula, id = m$id, family = m$family, corstr = corstr,
       waves = if (waves) m$wave else NULL,
       tol = if (tight) 1e-10 else 1e-4, maxiter = if (tight) 200 else 25,
       term = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std.err"]),
       naive_std_error = unname(sqrt(diag(fit$geese$vbeta.naiv))),
       wald = unname(s[, "Wald"]), p_value = unname(s[, "Pr(>|W|)"]),
       alpha = unname(fit$geese$alpha), scale = unname(fit$geese$gamma),
       error = fit$geese$error, nobs = nrow(d))
}

cases <- list()
for (data in names(data_sets)) {
  for (cs in c("independence", "exchangeable", "ar1", "unstructured")) {
    cases[[paste(data, cs, sep = "_")]] <- fit_case(data, cs)
    cases[[paste(data, cs, "tight", sep = "_")]] <- fit_case(data, cs, tight = TRUE)
  }
  if (grepl("_mis$", data) || data == "dietox") {
    for (cs in c("ar1", "unstructured")) {
      cases[[paste(data, cs, "waves", sep = "_")]] <- fit_case(data, cs, waves = TRUE)
      cases[[paste(data, cs, "waves_tight", sep = "_")]] <- fit_case(data, cs, waves = TRUE, tight = TRUE)
    }
  }
}
res <- list(cases = cases,
            versions = list(R = R.version.string, geepack = as.character(packageVersion("geepack"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, na = "null", null = "null", pretty = FALSE),
           file.path(out_dir, "gee_reference.json"))
cat("wrote", file.path(out_dir, "gee_reference.json"), length(cases), "cases\n")
