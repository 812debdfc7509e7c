# Reference values for cohort.describe (tests/unit/test_describe.py).
# R's tableone is not installed here (no Debian package), so every statistic is computed
# with base R and the formulas tableone uses (Austin 2009; Yang & Dalton 2012):
#   continuous SMD  |m1 - m2| / sqrt((s1^2 + s2^2) / 2)
#   categorical SMD sqrt(d' S^-1 d), d = p1 - p2 over levels 2..k, S = (S1 + S2) / 2,
#                   S_g = diag(p_g) - p_g p_g'
#   tests: chisq.test (Yates for 2x2), oneway.test(var.equal = TRUE), kruskal.test
#   median follow-up: reverse Kaplan-Meier, survfit(Surv(time, 1 - event) ~ 1)
# Run from the repository root:  Rscript tests/reference/describe/make_reference.R
suppressPackageStartupMessages({library(survival); library(jsonlite)})
out <- "tests/reference/describe"
set.seed(20261101)
n <- 157
d <- data.frame(
  group  = sample(c("iv", "intranasal", "oral"), n, replace = TRUE, prob = c(.45, .4, .15)),
  age    = round(rnorm(n, 45, 12), 1),
  sex    = sample(c("female", "male"), n, replace = TRUE, prob = c(.6, .4)),
  diagnosis = sample(c("MDD", "PTSD", "TRD", "bipolar"), n, replace = TRUE, prob = c(.2, .1, .6, .1)),
  prior  = rpois(n, 2),
  weight = round(rnorm(n, 77, 15), 1),
  stringsAsFactors = FALSE)
d$weight[sample(n, 9)] <- NA
d$diagnosis[sample(n, 4)] <- NA
d$time <- round(rexp(n, 0.3), 3)
d$event <- rbinom(n, 1, 0.4)
d$censor_reason <- ifelse(d$event == 1, NA, sample(c("exit: completed", "exit: withdrew"), n, TRUE))
write.csv(d, file.path(out, "table1_input.csv"), row.names = FALSE, na = "")

smd_cont <- function(x, y) { x <- x[!is.na(x)]; y <- y[!is.na(y)]
  abs(mean(x) - mean(y)) / sqrt((var(x) + var(y)) / 2) }
smd_cat <- function(x, y, levels) {
  x <- x[!is.na(x)]; y <- y[!is.na(y)]
  p1 <- as.numeric(table(factor(x, levels = levels)) / length(x))[-1]
  p2 <- as.numeric(table(factor(y, levels = levels)) / length(y))[-1]
  S <- (diag(p1, length(p1)) - outer(p1, p1) + diag(p2, length(p2)) - outer(p2, p2)) / 2
  dd <- p1 - p2
  sqrt(as.numeric(t(dd) %*% solve(S) %*% dd)) }

describe <- function(d, groups) {
  res <- list()
  cats <- c("sex", "diagnosis"); conts <- c("age", "weight", "prior")
  for (g in c("overall", groups)) {
    s <- if (g == "overall") d else d[d$group == g, ]
    cell <- list(n = nrow(s))
    for (v in conts) {
      x <- s[[v]]; x <- x[!is.na(x)]
      q <- quantile(x, c(.25, .5, .75), type = 7)
      cell[[v]] <- list(n = length(x), missing = sum(is.na(s[[v]])), mean = mean(x), sd = sd(x),
                        median = unname(q[2]), q1 = unname(q[1]), q3 = unname(q[3]))
    }
    for (v in cats) {
      x <- s[[v]]; lev <- sort(unique(d[[v]][!is.na(d[[v]])]), method = "radix")
      tab <- table(factor(x, levels = lev))
      cell[[v]] <- list(levels = lev, counts = as.integer(tab),
                        percent = as.numeric(100 * tab / sum(!is.na(x))), missing = sum(is.na(x)),
                        missing_percent = 100 * sum(is.na(x)) / nrow(s))
    }
    res[[g]] <- cell
  }
  tests <- list()
  sub <- d[d$group %in% groups, ]
  pairs <- combn(groups, 2)
  for (v in conts) {
    smds <- apply(pairs, 2, function(p) smd_cont(sub[[v]][sub$group == p[1]], sub[[v]][sub$group == p[2]]))
    ow <- oneway.test(as.formula(paste(v, "~ group")), data = sub, var.equal = TRUE)
    kw <- kruskal.test(as.formula(paste(v, "~ factor(group)")), data = sub)
    tests[[v]] <- list(smd = mean(smds), anova_statistic = unname(ow$statistic), anova_p = ow$p.value,
                       kruskal_statistic = unname(kw$statistic), kruskal_p = kw$p.value)
  }
  for (v in cats) {
    lev <- sort(unique(d[[v]][!is.na(d[[v]])]), method = "radix")
    smds <- apply(pairs, 2, function(p) smd_cat(sub[[v]][sub$group == p[1]], sub[[v]][sub$group == p[2]], lev))
    ct <- suppressWarnings(chisq.test(table(sub[[v]], sub$group)))
    tests[[v]] <- list(smd = mean(smds), chisq_statistic = unname(ct$statistic), chisq_df = unname(ct$parameter),
                       chisq_p = ct$p.value)
  }
  list(groups = groups, cells = res, tests = tests)
}

two <- describe(d[d$group %in% c("intranasal", "iv"), ], c("intranasal", "iv"))
three <- describe(d, c("intranasal", "iv", "oral"))

fu <- function(s) {
  km <- survfit(Surv(time, 1 - event) ~ 1, data = s)
  q <- quantile(km, c(.25, .5, .75))
  list(participants = nrow(s), events = sum(s$event), person_time = sum(s$time),
       median = unname(q$quantile[2]), conf_low = unname(q$lower[2]), conf_high = unname(q$upper[2]),
       q1 = unname(q$quantile[1]), q3 = unname(q$quantile[3]))
}
follow <- list(all = fu(d))
for (g in c("intranasal", "iv", "oral")) follow[[g]] <- fu(d[d$group == g, ])

write_json(list(two_groups = two, three_groups = three, follow_up = follow,
                r_version = R.version.string),
           file.path(out, "table1_reference.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
