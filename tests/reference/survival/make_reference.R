# Reference values for cohort.survival, computed with R's survival and cmprsk.
#
# Run from the repository root:  Rscript tests/reference/survival/make_reference.R
# Writes the datasets used (CSV) and the results (JSON) beside this script.
# R is not available in CI: the outputs are committed.
suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
  library(jsonlite)
})
out <- "tests/reference/survival"
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14)
wjson <- function(x, name) {
  writeLines(toJSON(x, digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
             file.path(out, paste0(name, ".json")))
}

# ---- datasets -------------------------------------------------------------
rossi <- read.csv(file.path(out, "rossi.csv"))  # written from lifelines' load_rossi (= carData::Rossi)
vet <- survival::veteran
vet$celltype <- as.character(vet$celltype)
write.csv(vet, file.path(out, "veteran.csv"), row.names = FALSE)
lung <- survival::lung
lung$status <- lung$status - 1L
lung <- lung[complete.cases(lung[, c("time", "status", "age", "sex", "ph.ecog")]),
             c("time", "status", "age", "sex", "ph.ecog", "inst")]
write.csv(lung, file.path(out, "lung.csv"), row.names = FALSE, na = "")
heart <- survival::jasa1
write.csv(heart, file.path(out, "heart.csv"), row.names = FALSE)
cgd <- survival::cgd[, c("id", "tstart", "tstop", "status", "enum", "treat", "sex", "age",
                         "inherit", "steroids", "hos.cat")]
cgd$treat <- as.integer(cgd$treat == "rIFN-g")
cgd$sex <- as.integer(cgd$sex == "female")
cgd$inherit <- as.integer(cgd$inherit == "autosomal")
cgd$hos.cat <- as.character(cgd$hos.cat)
names(cgd)[names(cgd) == "hos.cat"] <- "hos_cat"
write.csv(cgd, file.path(out, "cgd.csv"), row.names = FALSE)
mg <- survival::mgus2
mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
mg$event <- ifelse(mg$pstat == 0, 2L * mg$death, 1L)
mg$male <- as.integer(mg$sex == "M")
mg <- mg[complete.cases(mg[, c("etime", "event", "age", "male", "hgb")]),
         c("id", "etime", "event", "age", "male", "sex", "hgb")]
mg$sex <- as.character(mg$sex)
write.csv(mg, file.path(out, "mgus2.csv"), row.names = FALSE)

# ---- Kaplan-Meier -----------------------------------------------------------
km_ref <- function(fit, times) {
  s <- summary(fit, censored = TRUE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else sub(".*=", "", as.character(s$strata))
  tab <- data.frame(group = grp, time = s$time, n_risk = s$n.risk, n_event = s$n.event,
                    n_censor = s$n.censor, survival = s$surv, std_error = s$std.err,
                    conf_low = s$lower, conf_high = s$upper)
  a <- summary(fit, times = times, extend = TRUE)
  agrp <- if (is.null(a$strata)) rep("all", length(a$time)) else sub(".*=", "", as.character(a$strata))
  at <- data.frame(group = agrp, time = a$time, survival = a$surv, std_error = a$std.err,
                   conf_low = a$lower, conf_high = a$upper)
  m <- summary(fit)$table
  if (is.null(dim(m))) m <- t(as.matrix(m))
  med <- data.frame(group = if (nrow(m) == 1) "all" else sub(".*=", "", rownames(m)),
                    median = m[, "median"], conf_low = m[, "0.95LCL"], conf_high = m[, "0.95UCL"])
  list(table = tab, at = at, median = med, times = times)
}
wjson(list(
  rossi_fin = km_ref(survfit(Surv(week, arrest) ~ fin, data = rossi), c(10, 20, 52)),
  rossi_all = km_ref(survfit(Surv(week, arrest) ~ 1, data = rossi), c(10, 20, 52)),
  veteran_trt = km_ref(survfit(Surv(time, status) ~ trt, data = vet), c(30, 100, 365)),
  lung_sex = km_ref(survfit(Surv(time, status) ~ sex, data = lung), c(180, 365, 730)),
  heart_lt = km_ref(survfit(Surv(start, stop, event) ~ 1, data = heart), c(30, 365, 1000))
), "km")

# ---- log-rank -----------------------------------------------------------------
lr <- function(sd, scores = NULL) {
  o <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
  e <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
  res <- list(statistic = sd$chisq, df = length(o) - 1, p_value = pchisq(sd$chisq, length(o) - 1, lower.tail = FALSE),
              observed = o, expected = e)
  if (!is.null(scores)) {
    u <- sum(scores * (o - e))
    v <- drop(t(scores) %*% sd$var %*% scores)
    res$trend_statistic <- u^2 / v
    res$trend_p_value <- pchisq(u^2 / v, 1, lower.tail = FALSE)
  }
  res
}
wjson(list(
  rossi_fin = lr(survdiff(Surv(week, arrest) ~ fin, data = rossi)),
  veteran_celltype = lr(survdiff(Surv(time, status) ~ celltype, data = vet)),
  lung_sex_strat_ecog = lr(survdiff(Surv(time, status) ~ sex + strata(ph.ecog), data = lung)),
  lung_ecog_trend = lr(survdiff(Surv(time, status) ~ ph.ecog, data = lung), scores = c(0, 1, 2, 3))
), "logrank")

# ---- Cox ----------------------------------------------------------------------
cox_ref <- function(fit, zph = TRUE) {
  s <- summary(fit)$coefficients
  res <- list(term = rownames(s), estimate = unname(coef(fit)),
              std_error = unname(sqrt(diag(fit$naive.var %||% fit$var))),
              loglik = fit$loglik[2], loglik_null = fit$loglik[1],
              concordance = unname(fit$concordance["concordance"]),
              concordance_counts = as.list(fit$concordance[c("concordant", "discordant", "tied.x", "tied.y", "tied.xy")]),
              n = fit$n, nevent = fit$nevent, iter = fit$iter, score_test = unname(fit$score),
              wald_test = unname(fit$wald.test))
  if (!is.null(fit$naive.var)) res$robust_std_error <- unname(sqrt(diag(fit$var)))
  if (zph) {
    z <- cox.zph(fit, transform = "km")
    res$zph <- list(term = rownames(z$table), chisq = unname(z$table[, "chisq"]),
                    df = unname(z$table[, "df"]), p = unname(z$table[, "p"]))
  }
  res
}
`%||%` <- function(a, b) if (is.null(a)) b else a
vet$celltype <- relevel(factor(vet$celltype), ref = "squamous")
wjson(list(
  rossi_efron = cox_ref(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                              data = rossi, ties = "efron", control = ctl)),
  rossi_breslow = cox_ref(coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                                data = rossi, ties = "breslow", control = ctl)),
  rossi_strata_wexp = cox_ref(coxph(Surv(week, arrest) ~ fin + age + prio + strata(wexp),
                                    data = rossi, control = ctl)),
  rossi_weights_robust = cox_ref(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi,
                                       weights = 1 + (prio %% 3) / 2, robust = TRUE, control = ctl)),
  rossi_interaction = cox_ref(coxph(Surv(week, arrest) ~ fin * age + prio, data = rossi, control = ctl)),
  veteran_celltype = cox_ref(coxph(Surv(time, status) ~ trt + karno + diagtime + age + prior + celltype,
                                   data = vet, control = ctl)),
  lung = cox_ref(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, control = ctl)),
  lung_cluster_inst = cox_ref(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung[!is.na(lung$inst), ],
                                    cluster = inst, control = ctl)),
  heart_efron = cox_ref(coxph(Surv(start, stop, event) ~ age + year + surgery + transplant,
                              data = heart, cluster = id, control = ctl)),
  heart_breslow = cox_ref(coxph(Surv(start, stop, event) ~ age + year + surgery + transplant,
                                data = heart, cluster = id, ties = "breslow", control = ctl)),
  cgd_ag = cox_ref(coxph(Surv(tstart, tstop, status) ~ treat + sex + age + inherit + steroids + strata(hos_cat),
                         data = cgd, cluster = id, control = ctl)),
  cgd_pwp = cox_ref(coxph(Surv(tstart, tstop, status) ~ treat + age + strata(enum),
                          data = cgd, cluster = id, control = ctl), zph = FALSE)
), "cox")

# baseline cumulative hazard at the covariate means (Efron increments for Efron fits)
bh <- function(fit) { b <- basehaz(fit, centered = TRUE)
  list(time = b$time, hazard = b$hazard, strata = if (is.null(b$strata)) NULL else as.character(b$strata)) }
wjson(list(
  rossi_efron = bh(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, control = ctl)),
  rossi_breslow = bh(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, ties = "breslow", control = ctl)),
  heart_strata = bh(coxph(Surv(start, stop, event) ~ age + year + strata(surgery), data = heart, control = ctl))
), "basehaz")

# ---- competing risks ------------------------------------------------------------
ci <- cuminc(mg$etime, mg$event, group = mg$sex, cencode = 0)
tp <- c(12, 60, 120, 240)
tt <- timepoints(ci, tp)
cuminc_tab <- lapply(names(ci)[names(ci) != "Tests"], function(nm) {
  list(name = nm, time = ci[[nm]]$time, est = ci[[nm]]$est, var = ci[[nm]]$var)
})
aj <- survfit(Surv(etime, factor(event)) ~ sex, data = mg)
aj_s <- summary(aj, times = tp, extend = TRUE)
wjson(list(
  curves = cuminc_tab,
  tests = list(stat = unname(ci$Tests[, "stat"]), pv = unname(ci$Tests[, "pv"]), df = unname(ci$Tests[, "df"]),
               cause = rownames(ci$Tests)),
  at_times = tp, at_est = lapply(seq_len(nrow(tt$est)), function(i) unname(tt$est[i, ])),
  at_var = lapply(seq_len(nrow(tt$var)), function(i) unname(tt$var[i, ])), at_names = rownames(tt$est),
  aj_strata = as.character(aj_s$strata), aj_time = aj_s$time, aj_pstate = aj_s$pstate,
  aj_std_err = aj_s$std.err, aj_states = aj_s$states
), "cuminc")

cov <- cbind(age = mg$age, male = mg$male, hgb = mg$hgb)
fg1 <- crr(mg$etime, mg$event, cov, failcode = 1, cencode = 0, gtol = 1e-10, maxiter = 100)
fg2 <- crr(mg$etime, mg$event, cov, failcode = 2, cencode = 0, gtol = 1e-10, maxiter = 100)
fgres <- function(f) list(term = names(f$coef), estimate = unname(f$coef), std_error = unname(sqrt(diag(f$var))),
                          loglik = f$loglik, converged = f$converged)
wjson(list(cause1 = fgres(fg1), cause2 = fgres(fg2)), "finegray")

# ---- incidence rates (exact Poisson) ---------------------------------------------
ir <- data.frame(site = c("a", "b", "c"), n = c(12, 0, 30), py = c(1500.5, 800, 2100))
exact <- lapply(seq_len(nrow(ir)), function(i) {
  p <- poisson.test(ir$n[i], ir$py[i])
  list(rate = unname(p$estimate), low = p$conf.int[1], high = p$conf.int[2])
})
rr <- poisson.test(c(ir$n[3], ir$n[1]), c(ir$py[3], ir$py[1]))
wjson(list(data = ir, exact = exact,
           rr_c_vs_a = list(estimate = unname(rr$estimate), low = rr$conf.int[1], high = rr$conf.int[2],
                            p_value = rr$p.value)), "rates")

# ---- prediction: survfit(coxph, newdata) and predict.coxph ----------------------------
cols_of <- function(m) if (is.matrix(m)) lapply(seq_len(ncol(m)), function(j) unname(m[, j])) else list(unname(m))
sf_ref <- function(fit, nd, times) {
  sf <- survfit(fit, newdata = nd)
  strata <- if (is.null(sf$strata)) rep("all", length(sf$time)) else rep(names(sf$strata), sf$strata)
  sm <- summary(sf, times = times, extend = TRUE)
  smstrata <- if (is.null(sm$strata)) rep("all", length(sm$time)) else as.character(sm$strata)
  list(time = sf$time, strata = strata, n_risk = sf$n.risk, n_event = sf$n.event, n_censor = sf$n.censor,
       surv = cols_of(sf$surv), std_err = cols_of(sf$std.err), cumhaz = cols_of(sf$cumhaz),
       lower = cols_of(sf$lower), upper = cols_of(sf$upper),
       at_times = times, at_time = sm$time, at_strata = smstrata, at_surv = cols_of(sm$surv),
       at_std_err = cols_of(sm$std.err), at_cumhaz = cols_of(sm$cumhaz),
       at_lower = cols_of(sm$lower), at_upper = cols_of(sm$upper))
}
pr_ref <- function(fit, nd = NULL, types = c("lp", "risk", "expected"), refs = "strata") {
  out <- list()
  for (ty in types) for (rf in refs) {
    p <- if (is.null(nd)) predict(fit, type = ty, se.fit = TRUE, reference = rf)
         else predict(fit, newdata = nd, type = ty, se.fit = TRUE, reference = rf)
    out[[paste(ty, rf, sep = "_")]] <- list(fit = unname(p$fit), se = unname(p$se.fit))
  }
  out
}
rossi$w <- 1 + (rossi$prio %% 3) / 2
nd_rossi <- data.frame(fin = c(0, 1, 1), age = c(20, 30, 40), prio = c(0, 2, 5),
                       week = c(10, 30, 52), arrest = c(1, 0, 1))
heart_nd <- data.frame(age = c(-10, 5), year = c(1, 4), surgery = c(0, 1), start = c(0, 10), stop = c(50, 200),
                       event = c(1, 0))
vet_nd <- data.frame(trt = c(1, 2, 1), karno = c(60, 40, 80), celltype = c("large", "squamous", "smallcell"))
f_re <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, control = ctl)
f_rb <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, ties = "breslow", control = ctl)
f_rw <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, weights = w, control = ctl)
f_hs <- coxph(Surv(start, stop, event) ~ age + year + strata(surgery), data = heart, control = ctl)
f_ht <- coxph(Surv(start, stop, event) ~ age + year + surgery, data = heart, control = ctl)
f_vt <- coxph(Surv(time, status) ~ trt + karno + celltype, data = vet, control = ctl)
tms <- c(5, 10, 20, 52, 60)
wjson(list(
  rossi_efron = list(survfit = sf_ref(f_re, nd_rossi, tms), predict = pr_ref(f_re, nd_rossi, refs = c("sample", "zero")),
                     predict_train = pr_ref(f_re, types = c("lp", "risk", "expected")), means = unname(f_re$means)),
  rossi_breslow = list(survfit = sf_ref(f_rb, nd_rossi, tms), predict = pr_ref(f_rb, nd_rossi)),
  rossi_weights = list(survfit = sf_ref(f_rw, nd_rossi, tms), predict = pr_ref(f_rw, nd_rossi),
                       means = unname(f_rw$means)),
  heart_strata = list(survfit = sf_ref(f_hs, heart_nd, c(10, 100, 1000)),
                      survfit_all = sf_ref(f_hs, heart_nd[, c("age", "year")], c(10, 100, 1000)),
                      predict = pr_ref(f_hs, heart_nd, types = c("lp", "risk"), refs = c("strata", "sample", "zero")),
                      predict_expected = list(fit = unname(predict(f_hs, newdata = heart_nd, type = "expected"))),
                      predict_train = pr_ref(f_hs, types = c("lp", "risk"), refs = c("strata", "sample"))),
  heart_counting = list(survfit = sf_ref(f_ht, heart_nd, c(10, 100, 1000)),
                        predict_expected = list(fit = unname(predict(f_ht, newdata = heart_nd, type = "expected"))),
                        predict_train = pr_ref(f_ht, types = c("expected", "lp"))),
  veteran = list(survfit = sf_ref(f_vt, vet_nd, c(30, 100, 365)), predict = pr_ref(f_vt, vet_nd, types = c("lp", "risk")))
), "predict")


# ---- timefix: nearly equal times merged by aeqSurv (coxph, survfit, survdiff) -------------
set.seed(20261125)
tf <- data.frame(t = round(rexp(60, 0.3), 0) + 1, e = rbinom(60, 1, 0.7), x = round(rnorm(60), 3),
                 g = rep(0:1, 30))
tf$t <- tf$t + c(0, 1e-12, 3e-13, 0, -2e-12, 1e-10)[(seq_len(60) %% 6) + 1] * tf$t  # float noise
tf$s <- ifelse(seq_len(60) %% 4 == 0, pmax(0, floor(tf$t) - 1) + c(0, 1e-13)[(seq_len(60) %% 2) + 1], 0)
writeLines(c("t,e,x,g,s", sprintf("%.17g,%d,%.17g,%d,%.17g", tf$t, tf$e, tf$x, tf$g, tf$s)),
           file.path(out, "timefix.csv"))
tf <- read.csv(file.path(out, "timefix.csv"))
ctl_nofix <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-14, timefix = FALSE)
tf_km <- function(fit) { s <- summary(fit, censored = TRUE)
  list(time = s$time, n_risk = s$n.risk, n_event = s$n.event, survival = s$surv, std_error = s$std.err) }
tf_cox <- function(fit) list(estimate = unname(coef(fit)), std_error = unname(sqrt(diag(fit$var))),
                             loglik = fit$loglik[2], concordance = unname(fit$concordance["concordance"]))
wjson(list(
  n_unique_raw = length(unique(tf$t)), n_unique_fixed = length(unique(aeqSurv(Surv(tf$t, tf$e))[, 1])),
  km = tf_km(survfit(Surv(t, e) ~ 1, data = tf)),
  km_nofix = tf_km(survfit(Surv(t, e) ~ 1, data = tf, timefix = FALSE)),
  km_lt = tf_km(survfit(Surv(s, t, e) ~ 1, data = tf)),
  logrank = survdiff(Surv(t, e) ~ g, data = tf)$chisq,
  # survdiff(timefix = FALSE) fails in survival 3.5.3 (the option reaches model.frame); the test
  # only uses the order of the times, so distinct ranks give the unfixed statistic
  logrank_nofix = survdiff(Surv(match(t, sort(unique(t))), e) ~ g, data = tf)$chisq,
  cox = tf_cox(coxph(Surv(t, e) ~ x + g, data = tf, control = ctl)),
  cox_nofix = tf_cox(coxph(Surv(t, e) ~ x + g, data = tf, control = ctl_nofix)),
  cox_breslow = tf_cox(coxph(Surv(t, e) ~ x + g, data = tf, ties = "breslow", control = ctl)),
  cox_counting = tf_cox(coxph(Surv(s, t, e) ~ x + g, data = tf, control = ctl))
), "timefix")


# ---- concordance with case weights; cox.zph transforms -------------------------------------
zph_tr <- function(fit) lapply(c(identity = "identity", rank = "rank", log = "log", km = "km"), function(tr) {
  z <- cox.zph(fit, transform = tr)
  list(term = rownames(z$table), chisq = unname(z$table[, "chisq"]), df = unname(z$table[, "df"]),
       p = unname(z$table[, "p"]))
})
conc <- function(fit) list(concordance = unname(fit$concordance["concordance"]),
                           counts = as.list(fit$concordance[c("concordant", "discordant", "tied.x", "tied.y",
                                                              "tied.xy")]))
cgd$w <- 1 + (cgd$id %% 4) / 4
rossi$w2 <- 1 + (rossi$age %% 3)
f_rossi <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, control = ctl)
f_rossi_w <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, weights = w, control = ctl)
f_rossi_w2 <- coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, weights = w2, control = ctl)
f_heart <- coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, data = heart, control = ctl)
f_cgd_w <- coxph(Surv(tstart, tstop, status) ~ treat + age + strata(hos_cat), data = cgd, weights = w,
                 control = ctl)
f_vet_s <- coxph(Surv(time, status) ~ karno + age + celltype + strata(trt), data = vet, control = ctl)
wjson(list(
  rossi = list(zph = zph_tr(f_rossi), concordance = conc(f_rossi)),
  rossi_weights = list(zph = zph_tr(f_rossi_w), concordance = conc(f_rossi_w)),
  rossi_int_weights = list(zph = zph_tr(f_rossi_w2), concordance = conc(f_rossi_w2)),
  heart = list(zph = zph_tr(f_heart), concordance = conc(f_heart)),
  cgd_weights_strata = list(zph = zph_tr(f_cgd_w), concordance = conc(f_cgd_w)),
  veteran_strata = list(zph = zph_tr(f_vet_s), concordance = conc(f_vet_s))
), "zph_concordance")


# ---- collinear columns: NA coefficients (singular.ok = TRUE) ------------------------------
ctl_sing <- coxph.control(eps = 1e-12, iter.max = 100)  # R's default toler.chol flags the aliased columns
rossi$age2 <- rossi$age
rossi$lc <- rossi$fin + 2 * rossi$prio
rossi$one <- 1
sing_ref <- function(fit, nd) {
  z <- cox.zph(fit)
  sf <- survfit(fit, newdata = nd)
  list(term = names(coef(fit)), estimate = unname(coef(fit)), std_error = unname(sqrt(diag(vcov(fit)))),
       loglik = fit$loglik, score_test = unname(fit$score), wald_test = unname(fit$wald.test),
       concordance = unname(fit$concordance["concordance"]),
       zph = list(term = rownames(z$table), chisq = unname(z$table[, "chisq"]), df = unname(z$table[, "df"])),
       lp = unname(predict(fit, newdata = nd, type = "lp", se.fit = TRUE)$fit),
       lp_se = unname(predict(fit, newdata = nd, type = "lp", se.fit = TRUE)$se.fit),
       surv = cols_of(sf$surv), std_err = cols_of(sf$std.err))
}
nd_sing <- data.frame(fin = c(0, 1), age = c(20, 35), age2 = c(20, 35), prio = c(1, 4), lc = c(2, 9), one = 1,
                      wexp = c(0, 1))
wjson(list(
  duplicate = sing_ref(coxph(Surv(week, arrest) ~ fin + age + age2 + prio, data = rossi, control = ctl_sing), nd_sing),
  lincomb = sing_ref(coxph(Surv(week, arrest) ~ fin + age + prio + lc, data = rossi, control = ctl_sing), nd_sing),
  constant = sing_ref(coxph(Surv(week, arrest) ~ fin + one + age + prio, data = rossi, control = ctl_sing), nd_sing),
  strata_const = sing_ref(coxph(Surv(week, arrest) ~ fin + age + wexp + strata(wexp), data = rossi,
                                control = ctl_sing), nd_sing)
), "singular")

cat("reference written to", out, "\n")
