# report.awk: writes the evidence section of docs/RESULTS.md from the files in results/.
#
#   awk -f report.awk -v figdir=fig meta.txt timing.csv theory_points.csv theory_optimum.csv \
#       tensors.csv pretrain.csv ablation.csv ablation_configs.csv scale.csv scale_configs.csv \
#       finetune.csv speed_train.csv speed_gemm.csv speed_quant.csv
#
# Files are recognised by their base name; a missing one makes its section say "not run".
# Every number printed is read from those files or computed from them here: the prose around
# the numbers is chosen by comparisons (helps / no significant difference / hurts), so the text
# cannot contradict the data. Plain POSIX awk (mawk and gawk both run it).
#
# Statistics: recipes are compared on the final validation loss, paired by seed (the same seed
# means the same initial weights and the same batches in every recipe). With n seeds the paired
# differences d_s give mean(d); its standard error comes from the seed noise pooled over all
# recipes (function pool: two-way additive model recipes × seeds, (R-1)(S-1) degrees of freedom,
# 9 for 10 recipes × 2 seeds), or, where that cannot be estimated, from the pair's own spread
# sd(d)/sqrt(n). A difference counts as significant when the 95% Student-t interval excludes 0
# (|mean| > t(0.975, df)·SE); the text also says on how many seeds a was lower. With one seed
# there is no spread and the text says it shows a direction only.

function base(path,   n, p) { n = split(path, p, "/"); return p[n] }
function abs(x) { return x < 0 ? -x : x }
function isnum(x) { return x ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
function f(x, d) { return isnum(x) ? sprintf("%." d "f", x) : "n/a" }
function g3(x) { return isnum(x) ? sprintf("%.3g", x) : "n/a" }
function pct(x) { return isnum(x) ? sprintf("%.1f%%", 100 * x) : "n/a" }
function ratio(x) { return isnum(x) ? sprintf("%.2f×", x) : "n/a" }
function add_unique(list, item,   k) {
    # list is "a b c"; returns it with item appended when absent
    k = " " list " "
    if (index(k, " " item " ")) return list
    return list == "" ? item : list " " item
}

# ------------------------------------------------------------------ input
FNR == 1 { file = base(FILENAME); have[file] = 1 }
file == "meta.txt" {
    i = index($0, "=")
    if (i) meta[substr($0, 1, i - 1)] = substr($0, i + 1)
    next
}
FNR == 1 { split("", col); for (i = 1; i <= split($0, hdr, ","); i++) col[hdr[i]] = i; next }
{ n = split($0, v, ",") }
file == "timing.csv" { tsec[v[col["stage"]]] = v[col["seconds"]]; next }
file == "theory_points.csv" {
    d = v[col["dist"]]; gr = v[col["group"]]; r = v[col["rule"]]
    th_dists = add_unique(th_dists, d); th_groups = add_unique(th_groups, gr)
    TH[d, gr, r, "mse"] = v[col["rel_mse"]]
    TH[d, gr, r, "clip"] = v[col["clip_over_amax"]]
    TH[d, gr, r, "zc"] = v[col["zero_collapse"]]
    TH[d, gr, r, "halved"] = v[col["halved_fraction"]]
    next
}
file == "theory_curve.csv" {
    k = v[col["dist"]] SUBSEP v[col["group"]]
    if (!(k in CMIN) || v[col["rel_mse"]] + 0 < CMIN[k]) { CMIN[k] = v[col["rel_mse"]] + 0; CARG[k] = v[col["ratio"]] }
    next
}
file == "theory_optimum.csv" { OPTC[v[col["dist"]]] = v[col["opt_clip_over_sigma"]]; OPTM[v[col["dist"]]] = v[col["mse_at_opt"]]; next }
file == "tensors.csv" {
    t = v[col["tensor"]]; ro = v[col["role"]]; ax = v[col["axis"]]; fm = v[col["format"]]; r = v[col["rule"]]
    tn_list = add_unique(tn_list, t)
    tn_formats = add_unique(tn_formats, fm)
    tn_rules[fm] = add_unique(tn_rules[fm], r)
    KURT[t, ro] = v[col["kurtosis"]]
    SHAPE[t, ro] = v[col["rows"]] "×" v[col["cols"]]
    TN[t, ro, ax, fm, r, "mse"] = v[col["rel_mse"]]
    TN[t, ro, ax, fm, r, "zc"] = v[col["zero_collapse"]]
    next
}
file == "ablation_configs.csv" { ABL_FLAGS[v[1]] = v[2]; next }
file == "speed_ablation.csv" { SA_TPS[v[1]] = v[3]; SA_REL[v[1]] = v[4]; SA_ITEM[v[1]] = v[2]; next }
file == "scale_configs.csv" { SC_FLAGS[v[1]] = v[2]; next }
file == "pretrain.csv" || file == "finetune.csv" || file == "ablation.csv" || file == "scale.csv" {
    set = file == "pretrain.csv" ? "pre" : file == "finetune.csv" ? "ft" : file == "ablation.csv" ? "abl" : "sc"
    r = v[col["recipe"]]; s = v[col["seed"]]
    recipes[set] = add_unique(recipes[set], r)
    seeds[set] = add_unique(seeds[set], s)
    LV[set, r, s] = v[col["final_val_loss"]]
    LT[set, r, s] = v[col["final_train_loss"]]
    LS[set, r, s] = v[col["tokens_per_s"]]
    LK[set, r, s] = v[col["tokens"]]
    next
}
file == "finetune_start.csv" { FS0[v[1]] = v[2]; next }
file == "speed_train.csv" || file == "speed_gemm.csv" || file == "speed_quant.csv" {
    key = v[1]; val = v[2]
    SP[file, key] = val
    if (file == "speed_train.csv" && key ~ /^tokens_per_s\//) sp_recipes = add_unique(sp_recipes, substr(key, 14))
    if (file == "speed_gemm.csv" && key ~ /^gflops\//) sg_kernels = add_unique(sg_kernels, substr(key, 8))
    if (file == "speed_quant.csv" && key ~ /^gbps\//) sq_keys = add_unique(sq_keys, substr(key, 6))
    next
}

# ------------------------------------------------------------------ statistics over seeds
# Mean, standard error and count of field X (LV, LT or LS) of recipe r in set over its seeds.
function stat(set, r, which,   ns, sl, i, x, s, ss, n) {
    ns = split(seeds[set], sl, " "); s = 0; ss = 0; n = 0
    for (i = 1; i <= ns; i++) {
        x = which == "val" ? LV[set, r, sl[i]] : which == "train" ? LT[set, r, sl[i]] : LS[set, r, sl[i]]
        if (!isnum(x)) continue
        n++; s += x; ss += x * x
    }
    S_n = n
    S_mean = n ? s / n : "nan"
    S_se = n > 1 ? sqrt((ss - s * s / n) / (n - 1) / n) : "nan"
    if (n > 1 && ss - s * s / n < 0) S_se = 0
}
# Paired difference a - b of the final val loss over the seeds both have.
function paired(set, a, b,   ns, sl, i, x, y, s, ss, n, neg) {
    ns = split(seeds[set], sl, " "); s = 0; ss = 0; n = 0
    for (i = 1; i <= ns; i++) {
        x = LV[set, a, sl[i]]; y = LV[set, b, sl[i]]
        if (!isnum(x) || !isnum(y)) continue
        n++; s += x - y; ss += (x - y) * (x - y)
        if (x < y) neg++
    }
    P_n = n
    P_neg = neg
    P_mean = n ? s / n : "nan"
    P_se = n > 1 ? ss - s * s / n : "nan"
    if (n > 1) P_se = P_se < 0 ? 0 : sqrt(P_se / (n - 1) / n)
}
function has_recipe(set, r) { return index(" " recipes[set] " ", " " r " ") > 0 }
function diverged(set, r,   ns, sl, i, k) {
    ns = split(seeds[set], sl, " "); k = 0
    for (i = 1; i <= ns; i++) if ((set, r, sl[i]) in LV && !isnum(LV[set, r, sl[i]])) k++
    return k
}
# Two-sided 95% critical value of Student's t with df degrees of freedom (df ≥ 1).
function tcrit(df) {
    if (df <= 1) return 12.706
    if (df == 2) return 4.303
    if (df == 3) return 3.182
    if (df == 4) return 2.776
    if (df == 5) return 2.571
    if (df <= 7) return 2.447 - (df - 6) * 0.082
    if (df <= 10) return 2.306 - (df - 8) * 0.0335
    if (df <= 30) return 2.228 - (df - 10) * 0.0092
    return 1.96
}
# Seed noise of a set, pooled over every recipe: the residual variance of the two-way additive
# model val[r, s] = recipe effect + seed effect + noise (recipes with a finite loss on every seed),
# with (R-1)(S-1) degrees of freedom. The SE of a paired difference of two recipes' means over S
# seeds is then sqrt(2 σ² / S). Sets POOL_sd, POOL_df (0 when it cannot be estimated).
function pool(set,   nr, rl, ns, sl, i, j, R, ok, mr, ms, g, x, ss, use) {
    POOL_sd = 0; POOL_df = 0
    nr = split(recipes[set], rl, " "); ns = split(seeds[set], sl, " ")
    if (ns < 2) return
    R = 0
    for (i = 1; i <= nr; i++) {
        ok = 1
        for (j = 1; j <= ns; j++) if (!isnum(LV[set, rl[i], sl[j]])) ok = 0
        if (ok) use[++R] = rl[i]
    }
    if (R < 2) return
    g = 0
    for (i = 1; i <= R; i++) { mr[i] = 0; for (j = 1; j <= ns; j++) mr[i] += LV[set, use[i], sl[j]] / ns; g += mr[i] / R }
    for (j = 1; j <= ns; j++) { ms[j] = 0; for (i = 1; i <= R; i++) ms[j] += LV[set, use[i], sl[j]] / R }
    ss = 0
    for (i = 1; i <= R; i++) for (j = 1; j <= ns; j++) { x = LV[set, use[i], sl[j]] - mr[i] - ms[j] + g; ss += x * x }
    POOL_df = (R - 1) * (ns - 1)
    POOL_sd = sqrt(ss / POOL_df)
    POOL_n = ns
}
# One sentence comparing recipe a with recipe b (a is the Half-S side).
function verdict(set, a, b,   s, ga, gb, na, nb, dv, cl, sig, agree, df) {
    if (!has_recipe(set, a) || !has_recipe(set, b)) return ""
    dv = diverged(set, a) + diverged(set, b)
    paired(set, a, b)
    if (P_n == 0) return sprintf("`%s` vs `%s`: no comparison (%d run(s) stopped on a non-finite loss).", a, b, dv)
    # The pooled seed noise when there is one (more degrees of freedom than one pair's seeds).
    pool(set)
    if (POOL_df > 0 && P_n == POOL_n) { P_se = POOL_sd * sqrt(2 / P_n); df = POOL_df } else df = P_n - 1
    sig = P_n > 1 && abs(P_mean) > tcrit(df) * P_se
    agree = sprintf("%d of %d seeds lower", P_neg, P_n)
    if (P_n == 1)
        s = sprintf("`%s` ends %s than `%s` by %s nats (one seed: a direction, not a significant result)",
                    a, P_mean < 0 ? "lower" : P_mean > 0 ? "higher" : "equal", b, f(abs(P_mean), 4))
    else if (!sig)
        s = sprintf("`%s` vs `%s`: **no significant difference** (%s ± %s nats, %s)", a, b,
                    sprintf("%+.4f", P_mean), f(P_se, 4), agree)
    else if (P_mean < 0)
        s = sprintf("`%s` **helps** against `%s`: final val loss lower by %s ± %s nats (%s)", a, b,
                    f(-P_mean, 4), f(P_se, 4), agree)
    else
        s = sprintf("`%s` **hurts** against `%s`: final val loss higher by %s ± %s nats (%s)", a, b,
                    f(P_mean, 4), f(P_se, 4), agree)
    if (has_recipe(set, "bf16") && a != "bf16" && b != "bf16") {
        paired(set, a, "bf16"); ga = P_mean; na = P_n
        paired(set, b, "bf16"); gb = P_mean; nb = P_n
        if (na && nb && gb > 0) {
            if (ga <= gb) cl = sprintf("Half-S closes %s of `%s`'s gap", pct(1 - ga / gb), b)
            else cl = sprintf("`%s`'s gap is %s `%s`'s", a, ratio(ga / gb), b)
            if (!sig) cl = "point estimates: " cl
            s = s sprintf("; gap to bf16: `%s` %s, `%s` %s nats (%s)", b, f(gb, 4), a, f(ga, 4), cl)
        } else if (na && nb)
            s = s sprintf("; `%s` is not worse than bf16 here (gap %s), so there is no gap to close", b, f(gb, 4))
    }
    return s "."
}

# ------------------------------------------------------------------ sections
function header(   dirty, nrun, stl, i, key, runidx, runkey, runst, rk) {
    print "## Evidence: the Half-S claims at small scale (generated)" > headfile
    print "" > headfile
    print "_Generated by `bench/reproduce.sh`; do not edit between the markers, rerun the script._" > headfile
    print "" > headfile
    # Results of different stages may come from different runs (--stages): group the stages by
    # the run (command, commit, date) that last produced them.
    nrun = 0
    split("theory pretrain ablation scale tensors finetune speed", stl, " ")
    for (i = 1; i <= 7; i++) {
        key = meta["ran." stl[i]]
        if (key == "") continue
        if (!(key in runidx)) { runidx[key] = ++nrun; runkey[nrun] = key; runst[nrun] = stl[i] }
        else runst[runidx[key]] = runst[runidx[key]] ", " stl[i]
    }
    if (nrun <= 1) {
        dirty = meta["dirty"] + 0 ? sprintf(" plus %d uncommitted change(s) to tracked files", meta["dirty"]) : ""
        printf "- Command: `%s` (%s mode), %s.\n", meta["command"], meta["mode"], meta["date"] > headfile
        printf "- Commit: `%s`%s.\n", meta["commit"], dirty > headfile
    } else {
        print "- The stages come from " nrun " runs of the script (each stage's results are those of the last run that did it):" > headfile
        for (i = 1; i <= nrun; i++) {
            split(runkey[i], rk, "|")
            dirty = rk[3] + 0 ? sprintf(" plus %d uncommitted change(s) to tracked files", rk[3]) : ""
            printf "  - %s: `%s` at commit `%s`%s, %s.\n", runst[i], rk[4], rk[1], dirty, rk[2] > headfile
        }
    }
    printf "- Machine: %s × %s (`nproc` = %s), halfs kernels `%s`; %s training job(s) at a time, %s thread(s) each.\n",
        meta["nproc"], meta["cpu"], meta["nproc"], meta["isa"], meta["jobs"], meta["threads_per_job"] > headfile
    printf "- Pretraining: model `%s` on the embedded KJV corpus, %s steps of %s × %s tokens, peak lr %s (warmup %s), seeds %s. Fine-tuning: %s steps from the bf16 checkpoint on *The Devil's Dictionary*, lr %s, seeds %s.\n",
        meta["model"], meta["steps"], meta["batch"], meta["seq"], meta["lr"], meta["warmup"], meta["seeds"],
        meta["ft_steps"], meta["ft_lr"], meta["ft_seeds"] > headfile
    print "- Every number below is read from `results/` (raw CSV/JSON written by this run). Same seeds ⇒ same losses; speeds depend on the machine's load." > headfile
    if (meta["mode"] == "quick")
        print "- **This is the `--quick` run**: a tiny model, few steps, one seed. It proves the pipeline end to end; it is far too small to settle the claims. Read the comparisons below as directions only." > headfile
    print "" > headfile
}

function theory(   nd, dl, ng, gl, i, j, d, gr, r, rc, ro, lo_s, hi_s, lo_l, hi_l, xs, xl, name) {
    print "### 1. Theory: relative MSE vs clip ratio"
    print ""
    if (!have["theory_points.csv"]) { print "Not run (stage `theory`)."; print ""; return }
    print "![theory](" figdir "/theory.png)"
    print ""
    print "Curves: `halfs theory --curve` (one continuous scale r·amax/6 per group). Points: `halfs theory --json` Monte Carlo results of the E8M0 rules at their mean clip/amax, and `opt`, the exact per-group continuous optimum. Relative MSE = error energy / signal energy, iid unit-variance draws. Table: relative MSE of each rule; `optimum` is the per-group continuous optimum (the floor for one scale per group); the best common ratio is the curve's minimum (one continuous clip/amax ratio for all groups) and where it lies."
    print ""
    print "| input | group | ocp | ceil (max) | half | halfs | optimum | best common ratio (curve) | halfs/ceil | halfs/ocp | groups halved by halfs |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    nd = split(th_dists, dl, " "); ng = split(th_groups, gl, " ")
    lo_s = 1e9; hi_s = -1e9; lo_l = 1e9; hi_l = -1e9; xs = ""; xl = ""
    for (i = 1; i <= nd; i++) for (j = 1; j <= ng; j++) {
        d = dl[i]; gr = gl[j]
        rc = TH[d, gr, "halfs", "mse"] / TH[d, gr, "ceil", "mse"]
        ro = TH[d, gr, "halfs", "mse"] / TH[d, gr, "ocp", "mse"]
        name = d == "gauss" ? "Gaussian" : d == "laplace" ? "Laplace" : d == "t:3" ? "Student-t(3)" : d
        printf "| %s | %s | %s | %s | %s | %s | %s | %s at %s | %s | %s | %s |\n", name, gr, g3(TH[d, gr, "ocp", "mse"]),
            g3(TH[d, gr, "ceil", "mse"]), g3(TH[d, gr, "half", "mse"]), g3(TH[d, gr, "halfs", "mse"]),
            g3(TH[d, gr, "opt", "mse"]), g3(CMIN[d, gr]), f(CARG[d, gr], 2), ratio(rc), ratio(ro), pct(TH[d, gr, "halfs", "halved"])
        if (gr + 0 <= 32) { if (1 / rc < lo_s) lo_s = 1 / rc; if (1 / rc > hi_s) hi_s = 1 / rc; xs = xs " " ro }
        else { if (1 / rc < lo_l) lo_l = 1 / rc; if (1 / rc > hi_l) hi_l = 1 / rc; xl = xl " " ro }
    }
    print ""
    printf "MSE-optimal clip for an infinite group (numerical integration): "
    for (i = 1; i <= nd; i++) printf "%s α*/σ = %s (MSE %s)%s", dl[i], f(OPTC[dl[i]], 3), g3(OPTM[dl[i]]), i < nd ? "; " : ".\n"
    print ""
    summ["theory"] = sprintf("**Theory** (iid Gaussian, Laplace, t(3)): at groups of 16–32, `halfs` has %s–%s× lower MSE than `ceil` (max-scaling) and %s `ocp`; at groups of 1024–4096 it is %s–%s× lower than `ceil` and %s `ocp`.",
        f(lo_s, 2), f(hi_s, 2), range_vs(xs), f(lo_l, 2), f(hi_l, 2), range_vs(xl))
}
# "x–y% lower than" / "up to x% higher than" from a list of ratios halfs/ocp.
function range_vs(list,   n, a, i, lo, hi) {
    n = split(list, a, " "); lo = 1e9; hi = -1e9
    for (i = 1; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    if (abs(lo - 1) < 0.0005 && abs(hi - 1) < 0.0005) return "the same as (within 0.05%)"
    if (hi < 1) return sprintf("%s–%s%% lower than", f(100 * (1 - hi), 1), f(100 * (1 - lo), 1))
    if (lo > 1) return sprintf("%s–%s%% higher than", f(100 * (lo - 1), 1), f(100 * (hi - 1), 1))
    return sprintf("between %s%% lower and %s%% higher than", f(100 * (1 - lo), 1), f(100 * (hi - 1), 1))
}

function tensors(   x, nt, tl, i, t, nf, fl, k, fm, nr, rl, j, r, roles, rol, axes, nro, a, ax, ro, s, c, best, bv, z, line, base_r, nb, w, wins, ls, cnt, gm) {
    print "### 2. Real tensors of the bf16 model"
    print ""
    if (!have["tensors.csv"]) { print "Not run (stage `tensors`)."; print ""; return }
    print "`halfs capture` ran the bf16 checkpoint (seed " substr(meta["seeds"], 1, index(meta["seeds"] " ", " ") - 1) ") on one held-out batch of the validation text and saved, for every linear layer (q,k,v fused as `qkv_proj`, gate and up fused as `gate_up_proj`), its weight W [out × in], its input X [tokens × in] and its output gradient dY [tokens × out]; `halfs stats --json` measured each along both axes its GEMMs quantize it on: X along K (fprop, `row`) and along the tokens (wgrad, `col`); W along K (fprop, `row`) and along N (dgrad, `col`); dY along N (dgrad, `row`) and along the tokens (wgrad, `col`)."
    print ""
    print "Kurtosis (3 for a Gaussian):"
    print ""
    print "| layer | W | X | dY |"
    print "|---|---:|---:|---:|"
    nt = split(tn_list, tl, " ")
    for (i = 1; i <= nt; i++)
        printf "| `%s` | %s | %s | %s |\n", tl[i], g3(KURT[tl[i], "w"]), g3(KURT[tl[i], "x"]), g3(KURT[tl[i], "dy"])
    print ""
    print "Relative MSE per rule (geometric mean over the layers) and, after the slash, the mean zero-collapse (share of nonzero inputs that quantize to 0). **Bold**: the lowest MSE in the row."
    print ""
    nf = split(tn_formats, fl, " ")
    nro = split("w:row w:col x:row x:col dy:row dy:col", rol, " ")
    for (k = 1; k <= nf; k++) {
        fm = fl[k]
        nr = split(tn_rules[fm], rl, " ")
        line = "| " fm " | "
        for (j = 1; j <= nr; j++) line = line rl[j] " | "
        print line
        line = "|---|"
        for (j = 1; j <= nr; j++) line = line "---:|"
        print line
        for (a = 1; a <= nro; a++) {
            split(rol[a], z, ":"); ro = z[1]; ax = z[2]
            best = ""; bv = 1e30
            for (j = 1; j <= nr; j++) {
                gm = geo(ro, ax, fm, rl[j]); GM[j] = gm
                if (gm != "" && gm < bv) { bv = gm; best = j }
            }
            line = "| " (ro == "w" ? "W" : ro == "x" ? "X" : "dY") " " ax " |"
            for (j = 1; j <= nr; j++) {
                c = g3(GM[j]) " / " pct(zmean(ro, ax, fm, rl[j]))
                line = line " " (j == best ? "**" c "**" : c) " |"
            }
            print line
        }
        print ""
    }
    # Summary: halfs against the baseline rules, over every tensor and axis.
    ls = ""
    for (k = 1; k <= nf; k++) {
        fm = fl[k]
        if (fm == "nvfp4") { s = cmp_rule(fm, "halfs", "max") "; against `4over6`: " cmp_rule(fm, "halfs", "4over6") }
        else s = cmp_rule(fm, "halfs", "ceil") "; against `ocp`: " cmp_rule(fm, "halfs", "ocp")
        ls = ls sprintf("\n  - %s: `halfs` against `%s`: %s.", fm, fm == "nvfp4" ? "max" : "ceil", s)
    }
    if (index(" " tn_formats " ", " mxfp4-32 ") && index(" " tn_formats " ", " nvfp4 "))
        ls = ls sprintf("\n  - across formats: `mxfp4-32` `halfs` against `nvfp4` `max`: %s; against `nvfp4` `4over6`: %s.",
                        cmp_fr("mxfp4-32", "halfs", "nvfp4", "max"), cmp_fr("mxfp4-32", "halfs", "nvfp4", "4over6"))
    print "Half-S on these tensors (ratio = geometric mean over every tensor and axis of halfs's relative MSE divided by the other rule's; wins = tensor-axes where halfs's MSE is strictly lower):"
    x = ls; gsub(/\n  - /, "\n- ", x)
    print x
    print ""
    summ["tensors"] = "**Real tensors** (bf16 model, one held-out batch; relative MSE):" ls
}
# Geometric mean of rel_mse over the layers for (role, axis, format, rule).
function geo(ro, ax, fm, r,   nt, tl, i, s, n, x) {
    nt = split(tn_list, tl, " "); s = 0; n = 0
    for (i = 1; i <= nt; i++) {
        x = TN[tl[i], ro, ax, fm, r, "mse"]
        if (!isnum(x) || x <= 0) continue
        s += log(x); n++
    }
    return n ? exp(s / n) : ""
}
function zmean(ro, ax, fm, r,   nt, tl, i, s, n, x) {
    nt = split(tn_list, tl, " "); s = 0; n = 0
    for (i = 1; i <= nt; i++) {
        x = TN[tl[i], ro, ax, fm, r, "zc"]
        if (!isnum(x)) continue
        s += x; n++
    }
    return n ? s / n : ""
}
# "ratio 0.55×, wins 40/48" for rule a vs rule b in format fm, over every tensor, role, axis.
function cmp_rule(fm, a, b) { return cmp_fr(fm, a, fm, b) }
function cmp_fr(fa, a, fb, b,   nt, tl, i, nro, rol, z, k, x, y, s, n, w, gm, txt, za, zb) {
    nt = split(tn_list, tl, " "); nro = split("w:row w:col x:row x:col dy:row dy:col", rol, " ")
    s = 0; n = 0; w = 0
    for (i = 1; i <= nt; i++) for (k = 1; k <= nro; k++) {
        split(rol[k], z, ":")
        x = TN[tl[i], z[1], z[2], fa, a, "mse"]; y = TN[tl[i], z[1], z[2], fb, b, "mse"]
        if (!isnum(x) || !isnum(y) || x <= 0 || y <= 0) continue
        s += log(x / y); n++
        if (x < y) w++
        za += TN[tl[i], z[1], z[2], fa, a, "zc"]; zb += TN[tl[i], z[1], z[2], fb, b, "zc"]
    }
    if (!n) return "no data"
    gm = exp(s / n)
    if (abs(gm - 1) < 0.0005) txt = "the same MSE"
    else if (gm < 1) txt = pct(1 - gm) " lower MSE"
    else txt = pct(gm - 1) " higher MSE"
    return sprintf("ratio %s (%s), wins %d/%d, zero-collapse %s vs %s", ratio(gm), txt, w, n, pct(za / n), pct(zb / n))
}

function losses(set, title, fig,   nr, rl, i, r, gap, dv) {
    print title
    print ""
    if (!have[set == "pre" ? "pretrain.csv" : "finetune.csv"]) { print "Not run."; print ""; return }
    print "![" set "](" figdir "/" fig ")"
    print ""
    print "| recipe | seeds | final val loss | gap to bf16 (paired) | final train loss | tokens/s per job |"
    print "|---|---:|---:|---:|---:|---:|"
    nr = split(recipes[set], rl, " ")
    for (i = 1; i <= nr; i++) {
        r = rl[i]
        stat(set, r, "val"); vm = S_mean; vse = S_se; n = S_n
        paired(set, r, "bf16")
        gap = r == "bf16" ? "—" : P_n == 0 ? "n/a" : P_n == 1 ? sprintf("%+.4f", P_mean) : sprintf("%+.4f ± %.4f", P_mean, P_se)
        dv = diverged(set, r)
        printf "| `%s` | %d%s | %s | %s | ", r, n, dv ? sprintf(" (+%d diverged)", dv) : "",
            (n > 1 ? f(vm, 4) " ± " f(vse, 4) : f(vm, 4)), gap
        stat(set, r, "train"); printf "%s | ", f(S_mean, 4)
        stat(set, r, "tps"); printf "%s |\n", f(S_mean, 0)
    }
    print ""
    pool(set)
    if (POOL_df > 0)
        print "Seed noise of the final val loss, pooled over the recipes (two-way model recipes × seeds): σ = " f(POOL_sd, 4) " nats (" POOL_df " degrees of freedom), so a paired difference of two recipes over " POOL_n " seeds has a standard error of " f(POOL_sd * sqrt(2 / POOL_n), 4) " nats; the comparisons below use it.\n"
    if (set == "ft" && have["finetune_start.csv"])
        print "Before fine-tuning, the pretrained bf16 model has a loss of " f(FS0["loss"], 4) " nats/token on this validation text (`halfs eval`, " FS0["tokens"] " tokens, recipe `" FS0["recipe"] "`).\n"
    print "Final val loss: the trainer's last evaluation (nats/token); final train loss: mean over the last 5% of steps; ± is the standard error over seeds (for the gap: of the paired differences). A comparison below is called significant when the 95% Student-t interval of the paired mean difference excludes zero. tokens/s here is per training job at " meta["threads_per_job"] " thread(s), several jobs sharing the machine: see section 5 for clean speed numbers."
    print ""
}
# The paired difference a − b of the final val loss with its 95% interval: the pooled seed noise
# of the set when it covers the pair's seeds, else the pair's own spread. Sets D_mean, D_lo,
# D_hi, D_n, D_sig (1 when the interval excludes 0; never with one seed).
function interval(set, a, b,   df, se) {
    paired(set, a, b)
    D_n = P_n; D_mean = P_mean; D_lo = D_hi = "nan"; D_sig = 0
    if (P_n < 2) return
    pool(set)
    if (POOL_df > 0 && P_n == POOL_n) { se = POOL_sd * sqrt(2 / P_n); df = POOL_df } else { se = P_se; df = P_n - 1 }
    D_lo = P_mean - tcrit(df) * se; D_hi = P_mean + tcrit(df) * se
    D_sig = D_lo > 0 || D_hi < 0
}
function ci_text(   s) {
    if (D_n == 0) return "n/a"
    if (D_n == 1) return sprintf("%+.4f (1 seed)", D_mean)
    s = sprintf("%+.4f [%+.4f, %+.4f]", D_mean, D_lo, D_hi)
    return D_sig ? "**" s "**" : s
}
# The ablation table: every configuration's final val loss, its gap to bf16, and its paired
# difference from mxfp4-halfs and from nvfp4 with 95% intervals; then the best MXFP4
# configuration against the target (within 0.5% of bf16, not significantly worse than nvfp4).
function ablation(   nr, rl, i, r, bfm, gap, rel, best, bestv, tps, dv, txt, sig, ns, words) {
    if (!have["ablation.csv"]) return
    print "### Ablation: which tools close MXFP4's gap"
    print ""
    print "![ablation](" figdir "/ablation.png)"
    print ""
    print "MXFP4 (E8M0 scale per 32) with the Half-S rule, plus each tool of the NVFP4 recipe one at a time and all together, in the pretraining setup above (" meta["model"] ", " meta["steps"] " steps of " meta["batch"] " × " meta["seq"] " tokens), seeds " meta["ablation_seeds"] "; `halfs+X` is `mxfp4-halfs` plus X. Differences are paired by seed; [lo, hi] is the 95% Student-t interval, **bold** where it excludes zero (a claim), plain where it does not (no significant difference)."
    print ""
    print "| configuration | trainer flags | seeds | final val loss | gap to bf16 | relative gap | vs `mxfp4-halfs` | vs `nvfp4` | tokens/s per job | `bench train` tokens/s (vs `mxfp4-halfs`) |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    stat("abl", "bf16", "val"); bfm = S_mean
    nr = split(recipes["abl"], rl, " ")
    best = ""; bestv = ""
    for (i = 1; i <= nr; i++) {
        r = rl[i]
        stat("abl", r, "val"); vm = S_mean; vse = S_se; ns = S_n
        dv = diverged("abl", r)
        paired("abl", r, "bf16")
        gap = r == "bf16" ? "—" : P_n == 0 ? "n/a" : P_n == 1 ? sprintf("%+.4f", P_mean) : sprintf("%+.4f ± %.4f", P_mean, P_se)
        rel = r == "bf16" || P_n == 0 || !isnum(bfm) ? "—" : sprintf("%+.2f%%", 100 * P_mean / bfm)
        printf "| `%s` | `%s` | %d%s | %s | %s | %s | ", r, ABL_FLAGS[r], ns, dv ? sprintf(" (+%d diverged)", dv) : "",
            (ns > 1 ? f(vm, 4) " ± " f(vse, 4) : f(vm, 4)), gap, rel
        if (r == "mxfp4-halfs") printf "— | "; else { interval("abl", r, "mxfp4-halfs"); printf "%s | ", ci_text() }
        if (r == "nvfp4") printf "— | "; else { interval("abl", r, "nvfp4"); printf "%s | ", ci_text() }
        stat("abl", r, "tps"); printf "%s | ", f(S_mean, 0)
        printf "%s |\n", isnum(SA_TPS[r]) ? f(SA_TPS[r], 0) " (" ratio(SA_REL[r]) ")" : "—"
        if (r != "bf16" && r != "nvfp4" && isnum(vm) && (bestv == "" || vm < bestv)) { best = r; bestv = vm }
    }
    print ""
    if (isnum(SA_TPS["mxfp4-halfs"])) {
        print "Speed: *tokens/s per job* is the training runs' own throughput (" meta["jobs"] " jobs of " meta["threads_per_job"] " thread(s) sharing the machine); the last column is `halfs bench train` of every configuration in one run (the speed stage's setup below, model `" SP["speed_train.csv", "model"] "`, the configuration as an item such as `" SA_ITEM["halfs+rht16"] "`), each its fastest round, as a ratio to `mxfp4-halfs` in that run."
        print ""
    }
    words = ""
    for (i = 1; i <= nr; i++) {
        r = rl[i]
        if (r == "bf16" || r == "nvfp4" || r == "mxfp4-halfs" || r == "mxfp4-max") continue
        interval("abl", r, "mxfp4-halfs")
        if (D_n < 2) continue
        if (!D_sig) words = words sprintf("`%s`: no significant difference from `mxfp4-halfs` (%+.4f); ", r, D_mean)
        else words = words sprintf("`%s` **%s** against `mxfp4-halfs` by %.4f nats; ", r, D_mean < 0 ? "helps" : "hurts", abs(D_mean))
    }
    if (words != "") { sub(/; $/, ".", words); print "Each tool on top of `mxfp4-halfs`: " words; print "" }
    if (best != "" && isnum(bfm)) {
        paired("abl", best, "bf16"); rel = P_mean / bfm
        interval("abl", best, "nvfp4")
        sig = D_n > 1 && D_sig && D_mean > 0
        if (D_n < 2)
            txt = sprintf("Lowest MXFP4 loss: `%s` (final val loss %s), %s%% from bf16; against `nvfp4`: %s. One seed: directions only, no claim on the targets (within 0.5%% of bf16, not significantly worse than `nvfp4`).",
                best, f(bestv, 4), sprintf("%+.2f", 100 * rel), ci_text())
        else
            txt = sprintf("Best MXFP4 configuration: `%s` (final val loss %s), %s%% from bf16 (target: within 0.5%%: %s); against `nvfp4`: %s (target: not significantly worse: %s).",
                best, f(bestv, 4), sprintf("%+.2f", 100 * rel), abs(rel) <= 0.005 ? "**met**" : "**not met**",
                ci_text(), sig ? "**not met**" : "**met**")
        print txt
        print ""
        summ["ablation"] = "**Ablation** (" meta["model"] ", seeds " meta["ablation_seeds"] "): " txt
    }
}
# The scale check: each recipe's final val loss and gap to bf16 at the larger model (one seed),
# next to its gap at the pretraining/ablation model (mean over that set's seeds).
function scale_check(   nr, rl, i, r, bfm, gap, rel, small_gap, g0, n0, words, src) {
    if (!have["scale.csv"]) return
    print "### Scale check: the gaps at `" meta["scale_model"] "`"
    print ""
    print "![scale](" figdir "/scale.png)"
    print ""
    print "Model `" meta["scale_model"] "`, " meta["scale_steps"] " steps of " meta["batch"] " × " meta["seq"] " tokens, seed 1 (one seed: the gaps below are directions, not significant results; the curves show how they develop). The last column is the same configuration's gap at `" meta["model"] "` (mean over its seeds)."
    print ""
    print "| configuration | trainer flags | final val loss | gap to bf16 | relative gap | gap at `" meta["model"] "` | tokens/s |"
    print "|---|---|---:|---:|---:|---:|---:|"
    stat("sc", "bf16", "val"); bfm = S_mean
    nr = split(recipes["sc"], rl, " ")
    words = ""
    for (i = 1; i <= nr; i++) {
        r = rl[i]
        stat("sc", r, "val"); vm = S_mean
        paired("sc", r, "bf16"); gap = P_mean
        rel = r == "bf16" || !isnum(bfm) || !isnum(gap) ? "—" : sprintf("%+.2f%%", 100 * gap / bfm)
        src = has_recipe("abl", r) ? "abl" : has_recipe("pre", r) ? "pre" : ""
        small_gap = "n/a"
        if (src != "" && r != "bf16") { paired(src, r, "bf16"); g0 = P_mean; n0 = P_n; if (n0) small_gap = sprintf("%+.4f", g0) }
        printf "| `%s` | `%s` | %s | %s | %s | %s | ", r, SC_FLAGS[r], f(vm, 4),
            r == "bf16" ? "—" : isnum(gap) ? sprintf("%+.4f", gap) : "n/a", rel, r == "bf16" ? "—" : small_gap
        stat("sc", r, "tps"); printf "%s |\n", f(S_mean, 0)
        if (r != "bf16" && isnum(gap) && src != "" && n0 && isnum(g0) && g0 != 0)
            words = words sprintf("`%s` %s (%s → %s); ", r, abs(gap) < abs(g0) ? "shrinks" : "grows", sprintf("%+.4f", g0), sprintf("%+.4f", gap))
    }
    print ""
    if (words != "") {
        sub(/; $/, "", words)
        print "Gap to bf16 from `" meta["model"] "` to `" meta["scale_model"] "` (one seed at the larger model): " words "."
        print ""
        summ["scale"] = "**Scale check** (`" meta["scale_model"] "`, one seed, directions only): gap to bf16 " words "."
    }
}
function compare_block(set,   out, x) {
    out = ""
    if (set == "pre") {
        x = verdict(set, "mxfp4-halfs", "mxfp4-max"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "mxfp4-halfs", "mxfp4-ocp"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "mxfp4-halfs", "nvfp4"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "mxfp4-halfs", "nvfp4-4over6"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "fp4row-halfs", "fp4row-max"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "mxfp4-halfs+act-only", "mxfp4-max+act-only"); if (x != "") out = out "- " x "\n"
    } else {
        x = verdict(set, "mxfp4-halfs", "mxfp4-max"); if (x != "") out = out "- " x "\n"
        x = verdict(set, "fp4row-halfs", "fp4row-max"); if (x != "") out = out "- " x "\n"
    }
    return out
}

function speed(   nr, rl, i, r, tps, t32, tbf, ms, gm, qu, at, re, gq, nk, kl, k, ghalf, gbf, fq, nq, ql, q, s, ghs) {
    print "### 5. Speed"
    print ""
    if (!have["speed_train.csv"]) { print "Not run (stage `speed`)."; print ""; return }
    printf "`halfs bench train` (model `%s`, B=%s, T=%s, %s timed steps per recipe, %s threads, each recipe in its own process, synthetic tokens; OpenBLAS with its own CPU detection; %s rounds, each recipe's fastest round shown):\n\n",
        SP["speed_train.csv", "model"], SP["speed_train.csv", "batch"], SP["speed_train.csv", "seq"],
        SP["speed_train.csv", "steps"], SP["speed_train.csv", "threads"], SP["speed_train.csv", "rounds"]
    print "| recipe | tokens/s | vs fp32 | vs bf16 | ms/step | GEMM | quantization | attention | rest | peak RSS MB |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    t32 = SP["speed_train.csv", "tokens_per_s/fp32"]; tbf = SP["speed_train.csv", "tokens_per_s/bf16"]
    nr = split(sp_recipes, rl, " ")
    for (i = 1; i <= nr; i++) {
        r = rl[i]; tps = SP["speed_train.csv", "tokens_per_s/" r]; ms = SP["speed_train.csv", "ms_per_step/" r]
        gm = SP["speed_train.csv", "breakdown_ms/" r "/gemm"]; qu = SP["speed_train.csv", "breakdown_ms/" r "/quant"]
        at = SP["speed_train.csv", "breakdown_ms/" r "/attention"]; re = SP["speed_train.csv", "breakdown_ms/" r "/rest"]
        printf "| `%s` | %s | %s | %s | %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s |\n", r, f(tps, 0),
            isnum(t32) ? ratio(tps / t32) : "n/a", isnum(tbf) ? ratio(tps / tbf) : "n/a", f(ms, 1),
            f(gm, 1), (ms > 0 ? pct(gm / ms) : ""), f(qu, 1), (ms > 0 ? pct(qu / ms) : ""), f(at, 1), (ms > 0 ? pct(at / ms) : ""),
            f(re, 1), (ms > 0 ? pct(re / ms) : ""), f(SP["speed_train.csv", "peak_rss_mb/" r], 0)
    }
    print "(GEMM, quantization, attention, rest: ms per step and share of the step.)"
    print ""
    if (have["speed_gemm.csv"]) {
        printf "`halfs bench gemm` (M=%s, N=%s, K=%s, %s threads): ", SP["speed_gemm.csv", "m"], SP["speed_gemm.csv", "n"],
            SP["speed_gemm.csv", "k"], SP["speed_gemm.csv", "threads"]
        nk = split(sg_kernels, kl, " ")
        for (k = 1; k <= nk; k++)
            printf "`%s` %s GFLOP/s (%s sgemm)%s", kl[k], f(SP["speed_gemm.csv", "gflops/" kl[k]], 0),
                ratio(SP["speed_gemm.csv", "ratio_vs_sgemm/" kl[k]]), k < nk ? ", " : ".\n"
        print ""
    }
    if (have["speed_quant.csv"]) {
        printf "`halfs bench quant` (%s×%s, %s threads; memory copy %s GB/s): ", SP["speed_quant.csv", "rows"],
            SP["speed_quant.csv", "cols"], SP["speed_quant.csv", "threads"], f(SP["speed_quant.csv", "copy_gbps"], 1)
        nq = split(sq_keys, ql, " ")
        fq = 0
        for (q = 1; q <= nq; q++) {
            if (ql[q] !~ /-row$/) continue
            printf "%s`%s` %s GB/s", fq++ ? ", " : "", ql[q], f(SP["speed_quant.csv", "gbps/" ql[q]], 1)
        }
        print " (row-wise; the JSON in results/ has the column-wise numbers too)."
        print ""
    }
    # Against the paper's claim, and where the time goes.
    ghalf = SP["speed_train.csv", "tokens_per_s/mxfp4-halfs"]
    if (isnum(ghalf) && isnum(tbf) && tbf > 0) {
        s = sprintf("**Speed**: `mxfp4-halfs` trains at %s× the tokens/s of `bf16` and %s× `fp32` on this CPU (the paper: up to 1.8× end to end over BF16, on GPUs with native FP4).",
            f(ghalf / tbf, 2), isnum(t32) ? f(ghalf / t32, 2) : "n/a")
        s = s sprintf(" Per step, `bf16` → `mxfp4-halfs`: GEMMs %s → %s ms, quantization (bf16 rounding resp. FP4 packing) %s → %s ms, attention and the rest %s → %s ms.",
            f(SP["speed_train.csv", "breakdown_ms/bf16/gemm"], 0), f(SP["speed_train.csv", "breakdown_ms/mxfp4-halfs/gemm"], 0),
            f(SP["speed_train.csv", "breakdown_ms/bf16/quant"], 0), f(SP["speed_train.csv", "breakdown_ms/mxfp4-halfs/quant"], 0),
            f(SP["speed_train.csv", "breakdown_ms/bf16/attention"] + SP["speed_train.csv", "breakdown_ms/bf16/rest"], 0),
            f(SP["speed_train.csv", "breakdown_ms/mxfp4-halfs/attention"] + SP["speed_train.csv", "breakdown_ms/mxfp4-halfs/rest"], 0))
        s = s sprintf(" GEMMs are %s of an `fp32` step, %s of a `bf16` step and %s of an `mxfp4-halfs` step.",
            pct(SP["speed_train.csv", "breakdown_ms/fp32/gemm"] / SP["speed_train.csv", "ms_per_step/fp32"]),
            pct(SP["speed_train.csv", "breakdown_ms/bf16/gemm"] / SP["speed_train.csv", "ms_per_step/bf16"]),
            pct(SP["speed_train.csv", "breakdown_ms/mxfp4-halfs/gemm"] / SP["speed_train.csv", "ms_per_step/mxfp4-halfs"]))
        gbf = SP["speed_gemm.csv", "gflops/bf16_dpbf16"]; gq = SP["speed_gemm.csv", "gflops/mxfp4"]
        if (isnum(gbf) && isnum(gq) && gbf > 0)
            s = s sprintf(" On the `bench gemm` shape the packed MXFP4 GEMM runs %s× our bf16 GEMM and %s× OpenBLAS sgemm.",
                f(gq / gbf, 2), f(SP["speed_gemm.csv", "ratio_vs_sgemm/mxfp4"], 2))
        ghs = SP["speed_train.csv", "tokens_per_s/mxfp4-max"]
        if (isnum(ghs) && ghs > 0)
            s = s sprintf(" Half-S's second quantization pass costs %s of `mxfp4-max`'s throughput.",
                ghalf <= ghs ? pct(1 - ghalf / ghs) : "nothing measurable (" pct(ghalf / ghs - 1) " faster, noise)")
        print s
        print ""
        summ["speed"] = s
    }
    if (SP["speed_train.csv", "loadavg"] != "")
        print "Load average when the benchmarks started: " SP["speed_train.csv", "loadavg"] " (" meta["nproc"] " cores); other work on the machine lowers and scatters these numbers.\n"
}

function budget(   st, tot, ns, sl, i) {
    print "### Budget of this run"
    print ""
    ns = split("theory pretrain tensors finetune speed", sl, " "); tot = 0
    printf "Wall time per stage (results/timing.csv): "
    for (i = 1; i <= ns; i++) { if (!(sl[i] in tsec)) continue; printf "%s %s s; ", sl[i], tsec[sl[i]]; tot += tsec[sl[i]] }
    printf "total %s s (%s min).\n\n", tot, f(tot / 60, 1)
    full_plan()
}
# How long the full run takes, from the full model's tokens/s measured in section 5. Training
# tokens per run = steps × B × T; an evaluation batch (forward only) is counted as 1/3 of a
# training batch (forward + backward ≈ 3 forwards).
function full_plan(   tok_pre, tok_ft, ev_pre, ev_ft, nr, rl, i, r, b, tps, n_pre, n_ft, t_pre, t_ft, missing, nft, fl) {
    if (meta["full_model"] == "" || !have["speed_train.csv"]) return
    if (SP["speed_train.csv", "model"] != meta["full_model"]) return
    tok_pre = meta["full_steps"] * meta["full_batch"] * meta["full_seq"]
    ev_pre = (int(meta["full_steps"] / meta["full_eval_every"]) + 1) * meta["full_eval_batches"] * meta["full_batch"] * meta["full_seq"] / 3
    tok_ft = meta["full_ft_steps"] * meta["full_batch"] * meta["full_seq"]
    # 2 evaluation batches per fine-tuning evaluation in the full run (FT_EVAL_BATCHES there)
    ev_ft = (int(meta["full_ft_steps"] / meta["full_ft_eval_every"]) + 1) * 2 * meta["full_batch"] * meta["full_seq"] / 3
    n_pre = split(meta["full_seeds"], tmp, " "); n_ft = split(meta["full_ft_seeds"], tmp, " ")
    nr = split(meta["pretrain_recipes"], rl, " "); t_pre = 0; missing = ""
    for (i = 1; i <= nr; i++) {
        b = rl[i]
        if (!isnum(SP["speed_train.csv", "tokens_per_s/" b])) sub(/\+act-only$/, "", b)
        tps = SP["speed_train.csv", "tokens_per_s/" b]
        if (!isnum(tps) || tps <= 0) { missing = missing " " b; continue }
        t_pre += n_pre * (tok_pre + ev_pre) / tps
    }
    nft = split(meta["finetune_recipes"], fl, " "); t_ft = 0
    for (i = 1; i <= nft; i++) {
        tps = SP["speed_train.csv", "tokens_per_s/" fl[i]]
        if (!isnum(tps) || tps <= 0) { missing = missing " " fl[i]; continue }
        t_ft += n_ft * (tok_ft + ev_ft) / tps
    }
    printf "**The full run** (`bench/reproduce.sh`): model `%s`, pretraining %d recipes × %d seeds × %s steps of %s × %s tokens (%s M tokens per run, %s M in all), fine-tuning %d recipes × %d seeds × %s steps (%s M tokens in all). ",
        meta["full_model"], nr, n_pre, meta["full_steps"], meta["full_batch"], meta["full_seq"],
        f(tok_pre / 1e6, 2), f(nr * n_pre * tok_pre / 1e6, 1), nft, n_ft, meta["full_ft_steps"], f(nft * n_ft * tok_ft / 1e6, 1)
    printf "At the tokens/s of section 5 (`%s`, all %s threads, per recipe; evaluations at 1/3 of a training batch) the training takes about %s min for pretraining and %s min for fine-tuning, %s h in all, plus a few minutes for the theory, tensor and speed stages.%s\n\n",
        meta["full_model"], SP["speed_train.csv", "threads"], f(t_pre / 60, 0), f(t_ft / 60, 0), f((t_pre + t_ft) / 3600, 2),
        missing != "" ? " (No speed measured for:" missing "; not counted.)" : ""
}

function summary(   x) {
    print "### Summary: where Half-S helps, where it does not, and by how much" > headfile
    print "" > headfile
    if ("theory" in summ) print "- " summ["theory"] > headfile
    if ("tensors" in summ) print "- " summ["tensors"] > headfile
    if (cmp_pre != "") { print "- **Pretraining** (final validation loss):" > headfile; x = cmp_pre; gsub(/\n- /, "\n  - ", x); printf "  %s", x > headfile }
    if (cmp_ft != "") { print "- **Fine-tuning** on the held-out text (final validation loss):" > headfile; x = cmp_ft; gsub(/\n- /, "\n  - ", x); printf "  %s", x > headfile }
    if ("ablation" in summ) print "- " summ["ablation"] > headfile
    if ("scale" in summ) print "- " summ["scale"] > headfile
    if ("speed" in summ) print "- " summ["speed"] > headfile
    print "" > headfile
}

END {
    theory()
    tensors()
    losses("pre", "### 3. Pretraining", "pretrain.png")
    cmp_pre = compare_block("pre")
    if (cmp_pre != "") { print "Half-S against the other recipes (final val loss):"; print ""; printf "%s\n", cmp_pre }
    ablation()
    scale_check()
    losses("ft", "### 4. Fine-tuning (held-out text)", "finetune.png")
    cmp_ft = compare_block("ft")
    if (cmp_ft != "") { print "Half-S against max-scaling (final val loss on the held-out text):"; print ""; printf "%s\n", cmp_ft }
    speed()
    budget()
    # The header and the summary go to headfile: the shell puts them before this body.
    header()
    summary()
}
