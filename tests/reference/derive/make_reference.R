# Reference counting-process datasets built with R survival::tmerge, for
# tests/spec/test_counting_process.py (sql/derive/counting_process.sql).
#
# Input: the canonical tables in input/ (a simulated cohort of 120 participants
# over 3 years, cohort.simulate.simulate(120, seed=5, years=3), plus three
# hand-added records: a second session on one day, a session without weight, and
# a MADRS before the first session).
# Output: counting_process.csv and counting_process_recurrent.csv (one row per
# interval) and tcount.json (tmerge's diagnostics for each call).
# Run from anywhere: Rscript tests/reference/derive/make_reference.R
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
rd <- function(name) read.csv(file.path(here, "input", paste0(name, ".csv")), stringsAsFactors = FALSE)

admin_end <- as.Date("2021-06-30")
window_days <- 90
event_type <- "relapse"

p <- rd("participants")
s <- rd("treatment_sessions"); s$session_date <- as.Date(s$session_date)
a <- rd("assessments"); a$assessed_on <- as.Date(a$assessed_on)
e <- rd("events"); e$event_date <- as.Date(e$event_date)
x <- rd("exits"); x$exit_date <- as.Date(x$exit_date)
s$dose_kg <- s$dose_mg / s$weight_kg

# origin = first session; censoring: exit, else last contact, at most the administrative end
by_id <- function(d, g, f) {
  r <- tapply(as.numeric(d), g, f)
  as.Date(as.numeric(r[ids]), origin = "1970-01-01")
}
ids <- sort(unique(s$participant_id))
origin <- by_id(s$session_date, s$participant_id, min)
contact <- rbind(data.frame(id = s$participant_id, d = s$session_date),
                 data.frame(id = a$participant_id, d = a$assessed_on),
                 data.frame(id = e$participant_id, d = e$event_date))
last_contact <- by_id(contact$d, contact$id, max)
exit_date <- by_id(x$exit_date, x$participant_id, min)
censor <- pmin(ifelse(is.na(exit_date), last_contact, exit_date), admin_end)
censor <- as.Date(censor, origin = "1970-01-01")
names(origin) <- names(censor) <- ids

ev <- unique(e[e$event_type == event_type, c("participant_id", "event_date")])
ev <- ev[ev$participant_id %in% ids, ]
ev <- ev[ev$event_date > origin[ev$participant_id] & ev$event_date <= censor[ev$participant_id], ]

# per day: total dose, dose per kg (NA when a weight is missing), sessions
day <- aggregate(cbind(dose_mg, n = 1) ~ participant_id + session_date, data = s, FUN = sum)
dkg <- aggregate(dose_kg ~ participant_id + session_date, data = s, FUN = sum, na.action = na.pass)
day <- merge(day, dkg)
madrs <- a[a$instrument == "MADRS", c("participant_id", "assessed_on", "score")]

build <- function(recurrent) {
  first <- by_id(ev$event_date, ev$participant_id, min)
  end <- censor
  if (!recurrent) end <- pmin(end, first, na.rm = TRUE)
  names(end) <- ids
  keep <- end > origin
  base <- data.frame(id = ids[keep], futime = as.numeric(end[keep] - origin[keep]))
  t0 <- function(id, d) as.numeric(d - origin[id])
  out <- tmerge(base, base, id = id, tstop = futime)
  evk <- ev[ev$participant_id %in% base$id, ]
  evk <- evk[evk$event_date <= end[evk$participant_id], ]
  evk$t <- t0(evk$participant_id, evk$event_date)
  out <- tmerge(out, evk, id = participant_id, event = event(t), prior_events = cumtdc(t))
  dk <- day[day$participant_id %in% base$id, ]
  dk$t <- t0(dk$participant_id, dk$session_date)
  # a session without weight has an unknown dose per kg (NA), not the previous one:
  # na.rm = FALSE (tmerge's default would carry the last known value forward)
  out <- tmerge(out, dk, id = participant_id, current_dose_mg_per_kg = tdc(t, dose_kg),
                cumulative_dose_mg = cumtdc(t, dose_mg, 0), options = list(na.rm = FALSE))
  win <- rbind(data.frame(id = dk$participant_id, t = dk$t, n = dk$n),
               data.frame(id = dk$participant_id, t = dk$t + window_days, n = -dk$n))
  win <- aggregate(n ~ id + t, data = win, FUN = sum)
  out <- tmerge(out, win, id = id, recent_sessions = cumtdc(t, n, 0))
  mk <- madrs[madrs$participant_id %in% base$id, ]
  mk$t <- t0(mk$participant_id, mk$assessed_on)
  out <- tmerge(out, mk, id = participant_id, latest_madrs = tdc(t, score))
  tc <- attr(out, "tcount")
  out <- out[, c("id", "tstart", "tstop", "event", "prior_events", "current_dose_mg_per_kg",
                 "cumulative_dose_mg", "recent_sessions", "latest_madrs")]
  names(out)[1] <- "participant_id"
  list(data = out, tcount = tc)
}

single <- build(FALSE)
recurrent <- build(TRUE)
write.csv(single$data, file.path(here, "counting_process.csv"), row.names = FALSE)
write.csv(recurrent$data, file.path(here, "counting_process_recurrent.csv"), row.names = FALSE)
tc <- function(m) lapply(split(as.data.frame(m), rownames(m)), as.list)
write_json(list(single = tc(single$tcount), recurrent = tc(recurrent$tcount),
                admin_end = format(admin_end), window_days = window_days, event_type = event_type,
                r_version = R.version.string,
                survival_version = as.character(packageVersion("survival"))),
           file.path(here, "tcount.json"), auto_unbox = TRUE, pretty = TRUE, digits = NA)
