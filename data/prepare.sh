#!/bin/sh
# data/prepare.sh: rebuilds the embedded corpora in data/ from Debian packages (see README.md).
#
#   sh data/prepare.sh      (needs the bible-kjv and bible-kjv-text packages installed, and
#                            network access to Debian's archive for `apt-get download dict-devil`)
#
# Output (committed; the trainer only reads these):
#   kjv-train.txt.gz, kjv-val.txt.gz       King James Bible, verse numbers stripped; chapter k
#                                          (k = 0, 1, ... in canonical order) goes to val when
#                                          k % 20 == 19, to train otherwise.
#   devil-train.txt.gz, devil-val.txt.gz   The Devil's Dictionary (held out from pretraining, for
#                                          fine-tuning); entry e goes to val when e % 20 == 19.
# gzip -n -9 so the files (and the corpus hash the tokenizer cache is keyed on) are reproducible.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- King James Bible: one verse per line, "Book N" chapter headings, blank line between. ---
bible -l100000 'Genesis 1:1-Revelation 22:21' >"$work/kjv_raw.txt"
awk -v tr="$work/kjv-train.txt" -v va="$work/kjv-val.txt" '
    /^[1-3A-Z][A-Za-z ]* [0-9]+$/ { ch++; out = (ch % 20 == 0) ? va : tr;  # ch-1 = chapter index
                                    printf "%s%s\n\n", (seen[out]++ ? "\n" : ""), $0 > out; next }
    /^ *[0-9]+ / { sub(/^ *[0-9]+ /, ""); sub(/ +$/, ""); print > out; next }
    /^$/ { next }
    { print "unexpected line: " $0 > "/dev/stderr"; exit 1 }
' "$work/kjv_raw.txt"

# --- The Devil's Dictionary: drop dictfmt's 6-line database header and its final index line. ---
(cd "$work" && apt-get download dict-devil >/dev/null 2>&1 && dpkg -x dict-devil_*.deb devil)
zcat "$work"/devil/usr/share/dictd/devil.dict.dz | tail -n +7 | grep -v '^ abcdefghijklmnopqrstuvwxyz$' |
    awk -v tr="$work/devil-train.txt" -v va="$work/devil-val.txt" '
    BEGIN { out = tr }
    # An entry starts with a capitalised headword followed by "," or "." after a blank line.
    prev == "" && /^[A-Z][A-Z'"'"' -]*[A-Z][,.]/ { e++; out = (e % 20 == 0) ? va : tr }
    { print > out; prev = $0 }
'
for f in kjv-train kjv-val devil-train devil-val; do
    gzip -n -9 -c "$work/$f.txt" >"$here/$f.txt.gz"
    printf '%-18s %8d lines %9d bytes\n' "$f.txt" "$(wc -l <"$work/$f.txt")" "$(wc -c <"$work/$f.txt")"
done
