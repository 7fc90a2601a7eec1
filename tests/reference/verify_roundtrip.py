"""Check that decimal strings written by make_lme4_refs.R parse back to the exact doubles.

Input: a TSV file of lines ``<decimal string>\\t<C99 hex float from R's sprintf("%a")>``.
Python's float() is correctly rounded, so a string passes when float(string) has the very
bits given by the hex form.  Exit status 0 when every pair matches, 1 otherwise; each
failure is also printed as a line
``FAIL\t<hex>`` so that the R script can re-write those values with 17 digits.

    python3 verify_roundtrip.py pairs.tsv
"""

import sys


def main(path: str) -> int:
    n = 0
    bad = []
    with open(path, encoding="ascii") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            dec, hx = line.split("\t")
            n += 1
            if float(dec) != float.fromhex(hx) or (
                float(dec) == 0.0 and str(float(dec))[0] != str(float.fromhex(hx))[0]
            ):
                bad.append((dec, hx))
    if bad:
        print(f"round-trip check: {len(bad)} of {n} numbers do NOT round-trip:")
        for dec, hx in bad[:20]:
            print(f"  {dec!r} -> {float(dec)!r}, expected {float.fromhex(hx)!r} ({hx})")
        for _dec, hx in bad:
            print(f"FAIL\t{hx}")
        return 1
    print(f"round-trip check: all {n} distinct numbers round-trip exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
