# json_flat.awk: flatten a JSON document into one "path<TAB>value" line per scalar.
#
# Used by bench/reproduce.sh to read the --json output of the halfs CLI with nothing but POSIX awk
# (no jq, no Python on a fresh Debian). Object keys and array indices (from 0) are joined with
# "/": {"a": {"b": [1, 2]}} gives "a/b/0<TAB>1" and "a/b/1<TAB>2". Strings are printed without
# their quotes (\" \\ \/ \n \t unescaped; \uXXXX kept as written); true/false/null as written.
# Several documents in one input (e.g. concatenated outputs) are flattened one after another.
# Exit status 1, with a message on stderr, on malformed input.
function fail(msg) {
    printf "json_flat.awk: %s at character %d\n", msg, pos > "/dev/stderr"
    bad = 1
    exit 1
}
function skip_ws(   c) {
    while (pos <= len) {
        c = substr(text, pos, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") return
        pos++
    }
}
function parse_string(   out, c, e) {
    # text at pos is the opening quote
    pos++
    out = ""
    while (pos <= len) {
        c = substr(text, pos, 1)
        if (c == "\"") { pos++; return out }
        if (c == "\\") {
            e = substr(text, pos + 1, 1)
            if (e == "n") out = out "\n"
            else if (e == "t") out = out "\t"
            else if (e == "r") out = out "\r"
            else if (e == "u") out = out "\\u"
            else out = out e
            pos += 2
            continue
        }
        out = out c
        pos++
    }
    fail("unterminated string")
}
function join(path, k) { return path == "" ? k : path "/" k }
function parse_value(path,   c, k, i, start) {
    skip_ws()
    c = substr(text, pos, 1)
    if (c == "{") {
        pos++
        skip_ws()
        if (substr(text, pos, 1) == "}") { pos++; return }
        while (1) {
            skip_ws()
            if (substr(text, pos, 1) != "\"") fail("expected a key")
            k = parse_string()
            skip_ws()
            if (substr(text, pos, 1) != ":") fail("expected ':'")
            pos++
            parse_value(join(path, k))
            skip_ws()
            c = substr(text, pos, 1)
            pos++
            if (c == "}") return
            if (c != ",") fail("expected ',' or '}'")
        }
    }
    if (c == "[") {
        pos++
        skip_ws()
        if (substr(text, pos, 1) == "]") { pos++; return }
        for (i = 0; ; i++) {
            parse_value(join(path, i))
            skip_ws()
            c = substr(text, pos, 1)
            pos++
            if (c == "]") return
            if (c != ",") fail("expected ',' or ']'")
        }
    }
    if (c == "\"") { printf "%s\t%s\n", path, parse_string(); return }
    start = pos
    while (pos <= len && index("{}[],: \t\n\r\"", substr(text, pos, 1)) == 0) pos++
    if (pos == start) fail("expected a value")
    printf "%s\t%s\n", path, substr(text, start, pos - start)
}
{ text = text $0 "\n" }
END {
    if (bad) exit 1
    len = length(text)
    pos = 1
    skip_ws()
    while (pos <= len) {
        parse_value("")
        skip_ws()
    }
}
