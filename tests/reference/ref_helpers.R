## Helpers shared by the reference scripts (make_lme4_refs.R, make_glmm_refs.R): number
## formatting that round-trips exactly, and writing data sets with their levels. Sourced by
## each script after it has set `here`, `out_dir` and `data_dir`.

## ---------------------------------------------------------------------------------
## Number formatting: shortest round-trip of 15/16/17 significant digits.
## Every (string, exact hex) pair is collected for the Python check at the end.
## ---------------------------------------------------------------------------------
.rt <- new.env()
.rt$chunks <- list()
.rt$force17 <- character(0)

fmt_num <- function(x) {
    x <- as.double(x)
    out <- rep(NA_character_, length(x))
    ok <- is.finite(x)
    if (!any(ok)) return(out)
    v <- x[ok]
    hx <- sprintf("%a", v)
    s <- sprintf("%.15g", v)
    bad <- as.numeric(s) != v
    if (any(bad)) {
        s16 <- sprintf("%.16g", v[bad])
        bad16 <- as.numeric(s16) != v[bad]
        s16[bad16] <- sprintf("%.17g", v[bad][bad16])
        s[bad] <- s16
    }
    ## values whose shorter form R's (inexact) parser accepted but a correctly rounded
    ## parser does not: found by verify_roundtrip.py, written with 17 digits (always exact)
    if (length(.rt$force17)) {
        f <- hx %in% .rt$force17
        s[f] <- sprintf("%.17g", v[f])
    }
    out[ok] <- s
    .rt$chunks[[length(.rt$chunks) + 1L]] <- cbind(s, hx)
    out
}

## Turn every double inside a nested list into verbatim JSON text, so that jsonlite
## writes exactly our shortest-round-trip strings.  A length-1 double becomes a JSON
## scalar unless wrapped in I(); a matrix becomes an array of rows.
as_json_numbers <- function(x) {
    if (is.null(x)) return(NULL)
    if (is.list(x) && !is.data.frame(x)) {
        nm <- names(x)
        y <- lapply(x, as_json_numbers)
        names(y) <- nm
        if (inherits(x, "AsIs")) class(y) <- "AsIs"
        return(y)
    }
    if (is.double(x)) {
        if (is.matrix(x)) {
            rows <- apply(x, 1, function(r) {
                s <- fmt_num(r); s[is.na(s)] <- "null"
                paste0("[", paste(s, collapse = ","), "]")
            })
            return(structure(paste0("[", paste(rows, collapse = ","), "]"), class = "json"))
        }
        s <- fmt_num(x); s[is.na(s)] <- "null"
        if (length(x) == 1L && !inherits(x, "AsIs"))
            return(structure(s, class = "json"))
        return(structure(paste0("[", paste(s, collapse = ","), "]"), class = "json"))
    }
    x
}

## Records (list of named lists) from a data frame; factors as their labels.
df_records <- function(df) {
    lapply(seq_len(nrow(df)), function(i) {
        r <- lapply(df[i, , drop = FALSE], function(col) {
            if (is.factor(col)) as.character(col) else col
        })
        names(r) <- names(df)
        r
    })
}

## character array (possibly empty) that stays a JSON array
chr <- function(x) I(as.character(unlist(x)))

named_list <- function(x) {
    l <- as.list(unname(x))
    names(l) <- names(x)
    l
}

## ---------------------------------------------------------------------------------
## Data sets
## ---------------------------------------------------------------------------------
## (same wording as /work/shared/reference, whose CSVs this writer reproduces byte for byte)
csv_format_note <- paste0(
    "write.csv(row.names=FALSE); factors written as their level labels (quoted); doubles ",
    "written with the shortest of 15/16/17 significant digits that round-trips exactly under ",
    "a correctly-rounded parser (Python float(), numpy, pandas float_precision='round_trip'; ",
    "NOT R's as.numeric, which can be off by 1 ulp for 16-17 digit input); NA written as NA.")

col_type <- function(col) {
    if (is.ordered(col)) "ordered factor" else if (is.factor(col)) "factor" else if (is.integer(col)) "integer" else
        if (is.double(col)) "double" else if (is.logical(col)) "logical" else
            if (is.character(col)) "character" else class(col)[1]
}

quote_csv <- function(s) paste0("\"", gsub("\"", "\"\"", s, fixed = TRUE), "\"")

written_datasets <- list()

write_dataset <- function(name, df, source, notes = NULL) {
    cols <- lapply(df, function(col) {
        if (is.factor(col) || is.character(col)) {
            s <- quote_csv(as.character(col))
        } else if (is.double(col)) {
            s <- fmt_num(col)
        } else if (is.integer(col)) {
            s <- as.character(col)
        } else if (is.logical(col)) {
            s <- ifelse(col, "TRUE", "FALSE")
        } else stop("unsupported column type in ", name)
        s[is.na(col)] <- "NA"
        s
    })
    lines <- c(paste(quote_csv(names(df)), collapse = ","),
               do.call(paste, c(unname(cols), sep = ",")))
    con <- file(file.path(data_dir, paste0(name, ".csv")), "wb")
    writeLines(lines, con, sep = "\n")
    close(con)
    facs <- names(df)[vapply(df, is.factor, TRUE)]
    info <- list(
        dataset = name,
        source = source,
        r_class = I(class(df)),
        nrow = nrow(df),
        columns = I(names(df)),
        column_types = lapply(df, col_type),
        n_missing = lapply(df, function(col) sum(is.na(col))),
        levels = setNames(lapply(facs, function(f) I(levels(df[[f]]))), facs),
        ordered = setNames(lapply(facs, function(f) is.ordered(df[[f]])), facs),
        csv_format = csv_format_note,
        roundtrip_verified = NA,   # filled in after the Python check
        notes = notes
    )
    if (!length(facs)) { info$levels <- structure(list(), names = character(0))
                         info$ordered <- structure(list(), names = character(0)) }
    written_datasets[[name]] <<- info
    invisible(df)
}

## ---------------------------------------------------------------------------------
## Round-trip check of every number written (needs python3), then write the JSON.
## The case JSONs are formatted first (collecting their numbers), then checked.
## ---------------------------------------------------------------------------------
format_all <- function(results) {
    .rt$chunks <- list()
    write_all_datasets()
    lapply(results, function(r)
        toJSON(as_json_numbers(r), auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
               null = "null", na = "null", digits = NA))
}

check_roundtrip <- function(py) {
    rt_file <- tempfile(fileext = ".tsv")
    on.exit(unlink(rt_file))
    rt_pairs <- do.call(rbind, .rt$chunks)
    rt_pairs <- rt_pairs[!duplicated(paste(rt_pairs[, 1], rt_pairs[, 2])), , drop = FALSE]
    writeLines(paste(rt_pairs[, 1], rt_pairs[, 2], sep = "\t"), rt_file)
    out <- suppressWarnings(system2(py, c(shQuote(file.path(here, "verify_roundtrip.py")),
                                          shQuote(rt_file)), stdout = TRUE, stderr = TRUE))
    cat(out[!startsWith(out, "FAIL\t")], sep = "\n")
    list(ok = is.null(attr(out, "status")) || attr(out, "status") == 0,
         failed_hex = sub("^FAIL\t", "", out[startsWith(out, "FAIL\t")]))
}

## Format every case of `results`, check that each number written reads back exactly, then
## write the data sets' level files and one JSON per case into `out_dir`.
write_verified_outputs <- function(results) {
    py <- Sys.which("python3")
    verified <- NA
    json_texts <- format_all(results)
    if (nzchar(py)) {
        for (attempt in 1:3) {
            chk <- check_roundtrip(py)
            if (chk$ok) { verified <- TRUE; break }
            if (!length(chk$failed_hex)) stop("round-trip check failed; see the output above")
            .rt$force17 <- unique(c(.rt$force17, chk$failed_hex))
            cat("re-writing", length(chk$failed_hex), "numbers with 17 significant digits\n")
            json_texts <- format_all(results)
        }
        if (!isTRUE(verified)) stop("round-trip check still failing")
    } else {
        warning("python3 not found: round-trip of the written numbers NOT verified")
    }

    for (nm in names(written_datasets)) {
        info <- written_datasets[[nm]]
        info$roundtrip_verified <- verified
        writeLines(toJSON(info, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null", digits = NA),
                   file.path(data_dir, paste0(nm, ".levels.json")))
    }

    for (id in names(results)) {
        txt <- json_texts[[id]]
        ## numbers_roundtrip_verified is appended textually (its value is known only now)
        txt <- sub("\n}$", paste0(",\n  \"numbers_roundtrip_verified\": ",
                                  if (is.na(verified)) "null" else tolower(verified), "\n}"), txt)
        writeLines(txt, file.path(out_dir, paste0(id, ".json")), useBytes = TRUE)
    }
    invisible(verified)
}
