/* tokenizer.c: byte-level BPE training, encoding, decoding and tokenizer.json I/O (tokenizer.h).
 *
 * Training follows the classic incremental algorithm: pre-tokenise, count unique pieces
 * ("words"), count adjacent token pairs weighted by word frequency, and keep for every pair the
 * list of words that contain it. Each merge then touches only the words that hold the merged
 * pair, adjusting the counts of the neighbouring pairs, and a max-heap with lazy deletion
 * (stale entries are re-pushed with their current count when popped) yields the next pair. A few
 * MB of text train to 4096 tokens in about a second.
 *
 * When a merge produces a byte string that is already a token (possible: (a, bc) and (ab, c)),
 * the merge maps to the existing id, as Hugging Face's trainer does: tokenizer.json's vocab is
 * a map from strings, so a string can have only one id.
 *
 * Encoding applies, inside each piece, the lowest-ranked merge present, leftmost occurrence
 * first, until none applies (a min-heap of (rank, position) over a linked list of symbols, as
 * Hugging Face's BPE does it: O(n log n) per piece). Decoding concatenates token bytes.
 */
#include "train/tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/rng.h"
#include "train/fileio.h"

/* ------------------------------------------------------------------ hash maps */

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    return hs_fnv1a(HS_FNV_INIT, p, n);
}

/* u64 key -> int32 value, open addressing; the key UINT64_MAX marks an empty slot. */
typedef struct {
    uint64_t *keys;
    int32_t *vals;
    size_t cap, n;
} u64map;

static int u64map_init(u64map *m, size_t cap) {
    m->cap = 16;
    while (m->cap < 2 * cap) m->cap *= 2;
    m->n = 0;
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->vals) return -1;
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    return 0;
}

static void u64map_free(u64map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int32_t u64map_get(const u64map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = (size_t)hs_rng_mix(key) & mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

/* Insert key -> val if absent; returns the stored value (the old one if present), or -2 on
 * allocation failure. */
static int32_t u64map_put(u64map *m, uint64_t key, int32_t val) {
    if (2 * (m->n + 1) > m->cap) {
        u64map bigger;
        if (u64map_init(&bigger, m->cap) != 0) {
            u64map_free(&bigger);
            return -2;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i] != UINT64_MAX) {
                size_t j = (size_t)hs_rng_mix(m->keys[i]) & (bigger.cap - 1);
                while (bigger.keys[j] != UINT64_MAX) j = (j + 1) & (bigger.cap - 1);
                bigger.keys[j] = m->keys[i];
                bigger.vals[j] = m->vals[i];
            }
        bigger.n = m->n;
        u64map_free(m);
        *m = bigger;
    }
    size_t mask = m->cap - 1, i = (size_t)hs_rng_mix(key) & mask;
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return val;
}

/* A growable list of byte strings in one pool, with a hash index: string -> index. */
typedef struct {
    unsigned char *pool;
    size_t pool_n, pool_cap;
    int64_t *off;
    int32_t *len;
    uint64_t *hash;
    int32_t n, cap;
    int32_t *slots; /* index + 1, 0 = empty */
    size_t nslots;
} strtab;

static void strtab_free(strtab *s) {
    free(s->pool);
    free(s->off);
    free(s->len);
    free(s->hash);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static int32_t strtab_find_h(const strtab *s, const unsigned char *p, size_t n, uint64_t h) {
    if (!s->nslots) return -1;
    size_t mask = s->nslots - 1, i = (size_t)h & mask;
    while (s->slots[i]) {
        int32_t k = s->slots[i] - 1;
        if (s->hash[k] == h && (size_t)s->len[k] == n && !memcmp(s->pool + s->off[k], p, n))
            return k;
        i = (i + 1) & mask;
    }
    return -1;
}

static int32_t strtab_find(const strtab *s, const unsigned char *p, size_t n) {
    return strtab_find_h(s, p, n, hash_bytes(p, n));
}

/* Append a string (no duplicate check; use find first). Returns its index or -1 (no memory). */
static int32_t strtab_add_h(strtab *s, const unsigned char *p, size_t n, uint64_t h) {
    if (n > INT32_MAX) return -1;
    if (s->n == s->cap) {
        int32_t cap = s->cap ? 2 * s->cap : 1024;
        int64_t *off = realloc(s->off, (size_t)cap * sizeof *off);
        if (off) s->off = off;
        int32_t *len = realloc(s->len, (size_t)cap * sizeof *len);
        if (len) s->len = len;
        uint64_t *hash = realloc(s->hash, (size_t)cap * sizeof *hash);
        if (hash) s->hash = hash;
        if (!off || !len || !hash) return -1;
        s->cap = cap;
    }
    if (s->pool_n + n + 1 > s->pool_cap) {
        size_t cap = s->pool_cap ? s->pool_cap : 4096;
        while (cap < s->pool_n + n + 1) cap *= 2;
        unsigned char *pool = realloc(s->pool, cap);
        if (!pool) return -1;
        s->pool = pool;
        s->pool_cap = cap;
    }
    if (2 * ((size_t)s->n + 1) > s->nslots) {
        size_t ns = s->nslots ? 2 * s->nslots : 2048;
        int32_t *slots = calloc(ns, sizeof *slots);
        if (!slots) return -1;
        for (int32_t k = 0; k < s->n; k++) {
            size_t i = (size_t)s->hash[k] & (ns - 1);
            while (slots[i]) i = (i + 1) & (ns - 1);
            slots[i] = k + 1;
        }
        free(s->slots);
        s->slots = slots;
        s->nslots = ns;
    }
    int32_t k = s->n++;
    if (n) memcpy(s->pool + s->pool_n, p, n);
    s->off[k] = (int64_t)s->pool_n;
    s->len[k] = (int32_t)n;
    s->hash[k] = h;
    s->pool_n += n;
    size_t i = (size_t)h & (s->nslots - 1);
    while (s->slots[i]) i = (i + 1) & (s->nslots - 1);
    s->slots[i] = k + 1;
    return k;
}

/* ------------------------------------------------------------------ the tokenizer */

struct hs_tokenizer {
    strtab tok;          /* token id -> bytes (ids are indices) */
    int32_t byte_id[256];
    int32_t n_merges, merge_cap;
    int32_t *merge_a, *merge_b, *merge_c; /* (n_merges,) */
    u64map ranks;        /* (a << 32 | b) -> lowest merge rank */
};

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

void hs_tokenizer_free(hs_tokenizer *t) {
    if (!t) return;
    strtab_free(&t->tok);
    free(t->merge_a);
    free(t->merge_b);
    free(t->merge_c);
    u64map_free(&t->ranks);
    free(t);
}

int hs_tokenizer_vocab_size(const hs_tokenizer *t) { return t ? t->tok.n : 0; }
int hs_tokenizer_n_merges(const hs_tokenizer *t) { return t ? t->n_merges : 0; }

const unsigned char *hs_tokenizer_token_bytes(const hs_tokenizer *t, int id, int *len) {
    if (!t || id < 0 || id >= t->tok.n) return NULL;
    if (len) *len = t->tok.len[id];
    return t->tok.pool + t->tok.off[id];
}

hs_status hs_tokenizer_merge(const hs_tokenizer *t, int r, int *left, int *right, int *result) {
    if (!t || r < 0 || r >= t->n_merges)
        return hs_fail(HS_ERR_INVALID_ARG, "merge index %d out of range", r);
    *left = t->merge_a[r];
    *right = t->merge_b[r];
    *result = t->merge_c[r];
    return HS_OK;
}

static int merges_reserve(hs_tokenizer *t, int32_t n) {
    t->merge_a = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    t->merge_b = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    t->merge_c = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    t->merge_cap = n > 0 ? n : 1;
    return t->merge_a && t->merge_b && t->merge_c ? 0 : -1;
}

/* Build the rank index from the merge list (first occurrence of a pair wins). */
static hs_status build_ranks(hs_tokenizer *t) {
    u64map_free(&t->ranks);
    if (u64map_init(&t->ranks, (size_t)t->n_merges + 16) != 0)
        return hs_fail(HS_ERR_NOMEM, "out of memory");
    for (int32_t r = 0; r < t->n_merges; r++)
        if (u64map_put(&t->ranks, pair_key(t->merge_a[r], t->merge_b[r]), r) == -2)
            return hs_fail(HS_ERR_NOMEM, "out of memory");
    return HS_OK;
}

/* ------------------------------------------------------------------ pre-tokenisation */

enum { C_SPACE, C_LETTER, C_DIGIT, C_OTHER };

static int byte_class(unsigned char c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return C_SPACE;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return C_LETTER;
    if (c >= '0' && c <= '9') return C_DIGIT;
    return C_OTHER;
}

size_t hs_pretokenize(const unsigned char *s, size_t n, size_t i) {
    if (i >= n) return n;
    unsigned char c = s[i];
    if (c == '\'' && i + 1 < n) {
        unsigned char d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
        if (i + 2 < n) {
            unsigned char e = s[i + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l'))
                return i + 3;
        }
    }
    size_t j = i;
    if (c == ' ' && i + 1 < n && byte_class(s[i + 1]) != C_SPACE) j = i + 1;
    int k = byte_class(s[j]);
    if (k != C_SPACE) {
        while (j < n && byte_class(s[j]) == k) j++;
        return j;
    }
    /* A whitespace run [i, e). */
    size_t e = i;
    while (e < n && byte_class(s[e]) == C_SPACE) e++;
    if (e == n) return n;          /* trailing whitespace: one piece */
    if (e - i >= 2) return e - 1;  /* \s+(?!\S): all but the last character */
    return e;                      /* one non-space whitespace character before a word */
}

/* ------------------------------------------------------------------ training */

typedef struct {
    int64_t count;
    int32_t p;
} heap_ent;

typedef struct {
    /* words */
    strtab words;
    int64_t *wcount;     /* (W,) */
    int64_t *wstart;     /* (W,) offset into sym */
    int32_t *wlen;       /* (W,) current number of symbols */
    int32_t *wstamp;     /* (W,) */
    int32_t *sym;        /* (sum of word lengths,) */
    /* pairs */
    u64map pidx;
    int32_t np, pcap;
    int64_t *pcount;
    int32_t *pa, *pb, *pstamp;
    int32_t **where;
    int32_t *wn, *wcap;
    int32_t *touched;
    int32_t ntouched, tcap;
    /* heap */
    heap_ent *heap;
    size_t hn, hcap;
    int oom;
} trainer;

static int heap_less(const trainer *tr, heap_ent x, heap_ent y) {
    /* x ranks before y: higher count, then smaller (a, b). */
    if (x.count != y.count) return x.count > y.count;
    if (tr->pa[x.p] != tr->pa[y.p]) return tr->pa[x.p] < tr->pa[y.p];
    return tr->pb[x.p] < tr->pb[y.p];
}

static void heap_push(trainer *tr, heap_ent e) {
    if (tr->hn == tr->hcap) {
        size_t cap = tr->hcap ? 2 * tr->hcap : 4096;
        heap_ent *h = realloc(tr->heap, cap * sizeof *h);
        if (!h) {
            tr->oom = 1;
            return;
        }
        tr->heap = h;
        tr->hcap = cap;
    }
    size_t i = tr->hn++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!heap_less(tr, e, tr->heap[par])) break;
        tr->heap[i] = tr->heap[par];
        i = par;
    }
    tr->heap[i] = e;
}

static heap_ent heap_pop(trainer *tr) {
    heap_ent top = tr->heap[0], last = tr->heap[--tr->hn];
    size_t i = 0, n = tr->hn;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        heap_ent best = last;
        if (l < n && heap_less(tr, tr->heap[l], best)) {
            m = l;
            best = tr->heap[l];
        }
        if (r < n && heap_less(tr, tr->heap[r], best)) m = r;
        if (m == i) break;
        tr->heap[i] = tr->heap[m];
        i = m;
    }
    if (n) tr->heap[i] = last;
    return top;
}

static int32_t pair_get_or_add(trainer *tr, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b);
    int32_t p = u64map_get(&tr->pidx, key);
    if (p >= 0) return p;
    if (tr->np == tr->pcap) {
        int32_t cap = tr->pcap ? 2 * tr->pcap : 4096;
#define GROW(ptr)                                                   \
    do {                                                            \
        void *q = realloc(ptr, (size_t)cap * sizeof *(ptr));        \
        if (!q) {                                                   \
            tr->oom = 1;                                            \
            return -1;                                              \
        }                                                           \
        ptr = q;                                                    \
    } while (0)
        GROW(tr->pcount);
        GROW(tr->pa);
        GROW(tr->pb);
        GROW(tr->pstamp);
        GROW(tr->where);
        GROW(tr->wn);
        GROW(tr->wcap);
#undef GROW
        tr->pcap = cap;
    }
    p = tr->np++;
    tr->pcount[p] = 0;
    tr->pa[p] = a;
    tr->pb[p] = b;
    tr->pstamp[p] = -1;
    tr->where[p] = NULL;
    tr->wn[p] = tr->wcap[p] = 0;
    if (u64map_put(&tr->pidx, key, p) == -2) {
        tr->oom = 1;
        return -1;
    }
    return p;
}

static void where_add(trainer *tr, int32_t p, int32_t w) {
    if (tr->wn[p] && tr->where[p][tr->wn[p] - 1] == w) return;
    if (tr->wn[p] == tr->wcap[p]) {
        int32_t cap = tr->wcap[p] ? 2 * tr->wcap[p] : 4;
        int32_t *q = realloc(tr->where[p], (size_t)cap * sizeof *q);
        if (!q) {
            tr->oom = 1;
            return;
        }
        tr->where[p] = q;
        tr->wcap[p] = cap;
    }
    tr->where[p][tr->wn[p]++] = w;
}

/* Add delta occurrences of pair (a, b) found in word w; remember pairs that grew. */
static void pair_inc(trainer *tr, int32_t a, int32_t b, int64_t delta, int32_t w, int32_t stamp) {
    int32_t p = pair_get_or_add(tr, a, b);
    if (p < 0) return;
    tr->pcount[p] += delta;
    where_add(tr, p, w);
    if (tr->pstamp[p] != stamp) {
        tr->pstamp[p] = stamp;
        if (tr->ntouched == tr->tcap) {
            int32_t cap = tr->tcap ? 2 * tr->tcap : 1024;
            int32_t *q = realloc(tr->touched, (size_t)cap * sizeof *q);
            if (!q) {
                tr->oom = 1;
                return;
            }
            tr->touched = q;
            tr->tcap = cap;
        }
        tr->touched[tr->ntouched++] = p;
    }
}

static void pair_dec(trainer *tr, int32_t a, int32_t b, int64_t delta) {
    int32_t p = u64map_get(&tr->pidx, pair_key(a, b));
    if (p >= 0) tr->pcount[p] -= delta;
}

/* Replace every non-overlapping (a, b), left to right, in word w by c, updating pair counts. */
static void merge_word(trainer *tr, int32_t w, int32_t a, int32_t b, int32_t c, int32_t stamp) {
    int32_t *s = tr->sym + tr->wstart[w];
    int32_t n = tr->wlen[w], i = 0, j = 0;
    int64_t f = tr->wcount[w];
    while (i < n) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (j > 0) {
                pair_dec(tr, s[j - 1], a, f);
                pair_inc(tr, s[j - 1], c, f, w, stamp);
            }
            if (i + 2 < n) {
                pair_dec(tr, b, s[i + 2], f);
                pair_inc(tr, c, s[i + 2], f, w, stamp);
            }
            pair_dec(tr, a, b, f);
            s[j++] = c;
            i += 2;
        } else {
            s[j++] = s[i++];
        }
    }
    tr->wlen[w] = j;
}

static void trainer_free(trainer *tr) {
    strtab_free(&tr->words);
    free(tr->wcount);
    free(tr->wstart);
    free(tr->wlen);
    free(tr->wstamp);
    free(tr->sym);
    u64map_free(&tr->pidx);
    for (int32_t p = 0; p < tr->np; p++) free(tr->where[p]);
    free(tr->where);
    free(tr->wn);
    free(tr->wcap);
    free(tr->pcount);
    free(tr->pa);
    free(tr->pb);
    free(tr->pstamp);
    free(tr->touched);
    free(tr->heap);
}

static hs_status count_words(trainer *tr, const unsigned char *const *texts, const size_t *lens,
                             int n_texts) {
    size_t wc_cap = 0;
    for (int k = 0; k < n_texts; k++) {
        const unsigned char *s = texts[k];
        size_t n = lens[k], i = 0;
        while (i < n) {
            size_t e = hs_pretokenize(s, n, i);
            uint64_t h = hash_bytes(s + i, e - i);
            int32_t w = strtab_find_h(&tr->words, s + i, e - i, h);
            if (w < 0) {
                w = strtab_add_h(&tr->words, s + i, e - i, h);
                if (w < 0) return hs_fail(HS_ERR_NOMEM, "out of memory counting words");
                if ((size_t)w >= wc_cap) {
                    wc_cap = wc_cap ? 2 * wc_cap : 4096;
                    int64_t *q = realloc(tr->wcount, wc_cap * sizeof *q);
                    if (!q) return hs_fail(HS_ERR_NOMEM, "out of memory counting words");
                    tr->wcount = q;
                }
                tr->wcount[w] = 0;
            }
            tr->wcount[w]++;
            i = e;
        }
    }
    return HS_OK;
}

hs_status hs_tokenizer_train(const unsigned char *const *texts, const size_t *lens, int n_texts,
                             int vocab, hs_tokenizer **out) {
    if (!out || n_texts < 0 || (n_texts > 0 && (!texts || !lens)))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_train: bad arguments");
    *out = NULL;
    if (vocab < 256 || vocab > HS_TOKENIZER_MAX_VOCAB)
        return hs_fail(HS_ERR_INVALID_ARG, "vocabulary size %d is out of range [256, %d]", vocab,
                       HS_TOKENIZER_MAX_VOCAB);
    hs_tokenizer *t = calloc(1, sizeof *t);
    trainer tr;
    memset(&tr, 0, sizeof tr);
    hs_status st = HS_OK;
    if (!t || u64map_init(&tr.pidx, 1 << 14) != 0 || merges_reserve(t, vocab - 256) != 0) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (strtab_add_h(&t->tok, &c, 1, hash_bytes(&c, 1)) != b) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
            goto done;
        }
        t->byte_id[b] = b;
    }
    st = count_words(&tr, texts, lens, n_texts);
    if (st != HS_OK) goto done;

    /* Symbols of every word, initially its bytes. */
    int32_t W = tr.words.n;
    size_t total = tr.words.pool_n;
    tr.wstart = malloc((size_t)(W ? W : 1) * sizeof *tr.wstart);
    tr.wlen = malloc((size_t)(W ? W : 1) * sizeof *tr.wlen);
    tr.wstamp = malloc((size_t)(W ? W : 1) * sizeof *tr.wstamp);
    tr.sym = malloc((total ? total : 1) * sizeof *tr.sym);
    if (!tr.wstart || !tr.wlen || !tr.wstamp || !tr.sym) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t w = 0; w < W; w++) {
        const unsigned char *p = tr.words.pool + tr.words.off[w];
        tr.wstart[w] = tr.words.off[w];
        tr.wlen[w] = tr.words.len[w];
        tr.wstamp[w] = -1;
        for (int32_t i = 0; i < tr.wlen[w]; i++) tr.sym[tr.wstart[w] + i] = p[i];
        for (int32_t i = 0; i + 1 < tr.wlen[w]; i++)
            pair_inc(&tr, p[i], p[i + 1], tr.wcount[w], w, 0);
    }
    for (int32_t p = 0; p < tr.np; p++)
        if (tr.pcount[p] > 0) heap_push(&tr, (heap_ent){tr.pcount[p], p});
    tr.ntouched = 0;
    if (tr.oom) {
        st = hs_fail(HS_ERR_NOMEM, "out of memory counting pairs");
        goto done;
    }

    unsigned char *buf = NULL;
    size_t buf_cap = 0;
    int32_t stamp = 0;
    while (t->tok.n < vocab && tr.hn > 0) {
        heap_ent e = heap_pop(&tr);
        int32_t p = e.p;
        if (tr.pcount[p] != e.count) { /* stale: requeue with the current count */
            if (tr.pcount[p] > 0) heap_push(&tr, (heap_ent){tr.pcount[p], p});
            continue;
        }
        if (e.count <= 0) continue;
        int32_t a = tr.pa[p], b = tr.pb[p];
        size_t la = (size_t)t->tok.len[a], lb = (size_t)t->tok.len[b];
        if (la + lb > buf_cap) {
            buf_cap = 2 * (la + lb);
            unsigned char *q = realloc(buf, buf_cap);
            if (!q) {
                free(buf);
                st = hs_fail(HS_ERR_NOMEM, "out of memory");
                goto done;
            }
            buf = q;
        }
        memcpy(buf, t->tok.pool + t->tok.off[a], la);
        memcpy(buf + la, t->tok.pool + t->tok.off[b], lb);
        uint64_t h = hash_bytes(buf, la + lb);
        int32_t c = strtab_find_h(&t->tok, buf, la + lb, h);
        if (c < 0) c = strtab_add_h(&t->tok, buf, la + lb, h);
        if (c < 0) {
            free(buf);
            st = hs_fail(HS_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (t->n_merges == t->merge_cap) {
            /* More merges than planned (duplicate results): grow the merge arrays. */
            int32_t cap = 2 * t->merge_cap;
            int32_t *qa = realloc(t->merge_a, (size_t)cap * sizeof *qa);
            if (qa) t->merge_a = qa;
            int32_t *qb = realloc(t->merge_b, (size_t)cap * sizeof *qb);
            if (qb) t->merge_b = qb;
            int32_t *qc = realloc(t->merge_c, (size_t)cap * sizeof *qc);
            if (qc) t->merge_c = qc;
            if (qa && qb && qc) t->merge_cap = cap;
            if (!qa || !qb || !qc) {
                free(buf);
                st = hs_fail(HS_ERR_NOMEM, "out of memory");
                goto done;
            }
        }
        t->merge_a[t->n_merges] = a;
        t->merge_b[t->n_merges] = b;
        t->merge_c[t->n_merges] = c;
        t->n_merges++;

        stamp++;
        tr.ntouched = 0;
        int32_t nw = tr.wn[p];
        int32_t *ws = tr.where[p];
        tr.where[p] = NULL; /* this pair is gone after the merge (c is longer than a and b) */
        tr.wn[p] = tr.wcap[p] = 0;
        for (int32_t k = 0; k < nw; k++) {
            int32_t w = ws[k];
            if (tr.wstamp[w] == stamp) continue;
            tr.wstamp[w] = stamp;
            merge_word(&tr, w, a, b, c, stamp);
        }
        free(ws);
        for (int32_t k = 0; k < tr.ntouched; k++) {
            int32_t q = tr.touched[k];
            if (tr.pcount[q] > 0) heap_push(&tr, (heap_ent){tr.pcount[q], q});
        }
        if (tr.oom) {
            free(buf);
            st = hs_fail(HS_ERR_NOMEM, "out of memory during BPE training");
            goto done;
        }
    }
    free(buf);
    st = build_ranks(t);
done:
    trainer_free(&tr);
    if (st != HS_OK) {
        hs_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HS_OK;
}

/* ------------------------------------------------------------------ encode / decode */

/* Scratch for encoding one piece: a linked list of symbols and a min-heap of candidate merges
 * ordered by (rank, position), as Hugging Face's BPE applies them. */
typedef struct {
    int32_t rank, pos;
} cand;

typedef struct {
    int32_t *sym, *nxt, *prv; /* (cap,) */
    cand *heap;               /* (3 cap,) */
    size_t cap, hn;
} enc_scratch;

static int enc_reserve(enc_scratch *e, size_t n) {
    if (n <= e->cap) return 0;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < n) cap *= 2;
    int32_t *a = realloc(e->sym, cap * sizeof *a);
    if (a) e->sym = a;
    int32_t *b = realloc(e->nxt, cap * sizeof *b);
    if (b) e->nxt = b;
    int32_t *c = realloc(e->prv, cap * sizeof *c);
    if (c) e->prv = c;
    cand *h = realloc(e->heap, 3 * cap * sizeof *h);
    if (h) e->heap = h;
    if (!a || !b || !c || !h) return -1;
    e->cap = cap;
    return 0;
}

static int cand_less(cand x, cand y) { return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos; }

static void cand_push(enc_scratch *e, cand c) {
    size_t i = e->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = c;
}

static cand cand_pop(enc_scratch *e) {
    cand top = e->heap[0], last = e->heap[--e->hn];
    size_t i = 0, n = e->hn;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = last;
        if (l < n && cand_less(e->heap[l], best)) {
            m = l;
            best = e->heap[l];
        }
        if (r < n && cand_less(e->heap[r], best)) m = r;
        if (m == i) break;
        e->heap[i] = e->heap[m];
        i = m;
    }
    if (n) e->heap[i] = last;
    return top;
}

static int32_t rank_of(const hs_tokenizer *t, int32_t a, int32_t b) {
    return u64map_get(&t->ranks, pair_key(a, b));
}

/* Encode one piece of n bytes, appending its ids to out (room for n); returns their number.
 * Repeatedly applies the lowest-ranked merge present, leftmost first: O(n log n). */
static int64_t encode_piece(const hs_tokenizer *t, const unsigned char *p, size_t n,
                            enc_scratch *e, int32_t *out) {
    int32_t *sym = e->sym, *nxt = e->nxt, *prv = e->prv;
    e->hn = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = t->byte_id[p[i]];
        nxt[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prv[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = rank_of(t, sym[i], sym[i + 1]);
        if (r >= 0) cand_push(e, (cand){r, (int32_t)i});
    }
    while (e->hn > 0) {
        cand c = cand_pop(e);
        int32_t i = c.pos, j;
        if (sym[i] < 0 || (j = nxt[i]) < 0 || rank_of(t, sym[i], sym[j]) != c.rank)
            continue; /* stale: that pair changed since it was queued */
        sym[i] = t->merge_c[c.rank];
        sym[j] = -1;
        nxt[i] = nxt[j];
        if (nxt[j] >= 0) prv[nxt[j]] = i;
        int32_t r;
        if (prv[i] >= 0 && (r = rank_of(t, sym[prv[i]], sym[i])) >= 0)
            cand_push(e, (cand){r, prv[i]});
        if (nxt[i] >= 0 && (r = rank_of(t, sym[i], sym[nxt[i]])) >= 0)
            cand_push(e, (cand){r, i});
    }
    int64_t k = 0;
    for (int32_t i = n ? 0 : -1; i >= 0; i = nxt[i]) out[k++] = sym[i];
    return k;
}

hs_status hs_tokenizer_encode(const hs_tokenizer *t, const void *bytes, size_t n, int32_t **ids,
                              int64_t *n_ids) {
    if (!t || !ids || !n_ids || (n && !bytes))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (n > (size_t)INT32_MAX)
        return hs_fail(HS_ERR_INVALID_ARG, "cannot encode %zu bytes at once (limit 2 GiB)", n);
    const unsigned char *s = bytes;
    int32_t *out = malloc((n ? n : 1) * sizeof *out); /* never more ids than bytes */
    enc_scratch e = {0};
    if (!out || enc_reserve(&e, 256) != 0) {
        free(out);
        free(e.sym);
        free(e.nxt);
        free(e.prv);
        free(e.heap);
        return hs_fail(HS_ERR_NOMEM, "out of memory encoding %zu bytes", n);
    }
    int64_t k = 0;
    size_t i = 0;
    hs_status st = HS_OK;
    while (i < n) {
        size_t end = hs_pretokenize(s, n, i);
        if (enc_reserve(&e, end - i) != 0) {
            st = hs_fail(HS_ERR_NOMEM, "out of memory encoding %zu bytes", n);
            break;
        }
        k += encode_piece(t, s + i, end - i, &e, out + k);
        i = end;
    }
    free(e.sym);
    free(e.nxt);
    free(e.prv);
    free(e.heap);
    if (st != HS_OK) {
        free(out);
        return st;
    }
    int32_t *shrunk = realloc(out, (size_t)(k ? k : 1) * sizeof *out);
    *ids = shrunk ? shrunk : out;
    *n_ids = k;
    return HS_OK;
}

hs_status hs_tokenizer_decode(const hs_tokenizer *t, const int32_t *ids, int64_t n, char **bytes,
                              size_t *n_bytes) {
    if (!t || !bytes || !n_bytes || n < 0 || (n && !ids))
        return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_decode: bad arguments");
    *bytes = NULL;
    *n_bytes = 0;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->tok.n)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "token id %d at position %lld is outside the vocabulary [0, %d)",
                           ids[i], (long long)i, t->tok.n);
        total += (size_t)t->tok.len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) return hs_fail(HS_ERR_NOMEM, "out of memory decoding %lld ids", (long long)n);
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t len = (size_t)t->tok.len[ids[i]];
        memcpy(out + at, t->tok.pool + t->tok.off[ids[i]], len);
        at += len;
    }
    out[at] = '\0';
    *bytes = out;
    *n_bytes = at;
    return HS_OK;
}

/* ------------------------------------------------------------------ tokenizer.json */

/* GPT-2's map: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves;
 * the other 68 bytes, in increasing order, get code points 256, 257, ... so that every token is
 * a string of visible characters (a space is 'Ġ' = U+0120). */
unsigned hs_byte_to_unicode(unsigned char b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++) {
        unsigned char y = (unsigned char)x;
        if (!((y >= '!' && y <= '~') || (y >= 0xA1 && y <= 0xAC) || (y >= 0xAE))) n++;
    }
    return 256 + n;
}

/* The inverse: code point -> byte, or -1. Code points range over [0, 324). */
static int unicode_to_byte(unsigned cp) {
    static int table[324];
    static int ready = 0; /* benign: every thread computes the same table */
    if (!ready) {
        for (int i = 0; i < 324; i++) table[i] = -1;
        for (int b = 0; b < 256; b++) table[hs_byte_to_unicode((unsigned char)b)] = b;
        ready = 1;
    }
    return cp < 324 ? table[cp] : -1;
}

/* Token bytes -> byte-level string (UTF-8 of the mapped code points; each is < 0x800, so at
 * most 2 UTF-8 bytes per byte). out needs 2*n+1 bytes. */
static void bytes_to_bl(const unsigned char *p, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = hs_byte_to_unicode(p[i]);
        if (cp < 0x80) {
            out[k++] = (char)cp;
        } else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[k] = '\0';
}

/* Byte-level string (n bytes of UTF-8) -> bytes; returns the byte count or -1 if the string
 * is not a valid byte-level encoding. out needs n bytes. */
static long bl_to_bytes(const char *s, size_t n, unsigned char *out) {
    size_t i = 0;
    long k = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp;
        if (c < 0x80) {
            cp = c;
            i += 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
            cp = (unsigned)(c & 0x1F) << 6 | ((unsigned char)s[i + 1] & 0x3F);
            if (cp < 0x80) return -1; /* overlong */
            i += 2;
        } else {
            return -1;
        }
        int b = unicode_to_byte(cp);
        if (b < 0) return -1;
        out[k++] = (unsigned char)b;
    }
    return k;
}

char *hs_tokenizer_to_json(const hs_tokenizer *t) {
    if (!t) return NULL;
    cJSON *root = cJSON_CreateObject();
    char *text = NULL, *tmp = NULL;
    int32_t maxlen = 1;
    for (int32_t i = 0; i < t->tok.n; i++)
        if (t->tok.len[i] > maxlen) maxlen = t->tok.len[i];
    tmp = malloc(4 * (size_t)maxlen + 4);
    if (!root || !tmp) goto out;
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", cJSON_CreateArray());
    cJSON_AddNullToObject(root, "normalizer");
    const char *bl_names[3] = {"pre_tokenizer", "post_processor", "decoder"};
    for (int k = 0; k < 3; k++) {
        if (k == 1) {
            cJSON_AddNullToObject(root, "post_processor");
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "ByteLevel");
        cJSON_AddBoolToObject(o, "add_prefix_space", 0);
        cJSON_AddBoolToObject(o, "trim_offsets", 1);
        cJSON_AddBoolToObject(o, "use_regex", 1);
        cJSON_AddItemToObject(root, bl_names[k], o);
    }
    cJSON *model = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "model", model);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON *vocab = cJSON_CreateObject();
    cJSON_AddItemToObject(model, "vocab", vocab);
    for (int32_t i = 0; i < t->tok.n; i++) {
        bytes_to_bl(t->tok.pool + t->tok.off[i], (size_t)t->tok.len[i], tmp);
        cJSON_AddItemToObject(vocab, tmp, cJSON_CreateNumber(i));
    }
    cJSON *merges = cJSON_CreateArray();
    cJSON_AddItemToObject(model, "merges", merges);
    for (int32_t r = 0; r < t->n_merges; r++) {
        int32_t a = t->merge_a[r], b = t->merge_b[r];
        bytes_to_bl(t->tok.pool + t->tok.off[a], (size_t)t->tok.len[a], tmp);
        size_t la = strlen(tmp);
        tmp[la] = ' ';
        bytes_to_bl(t->tok.pool + t->tok.off[b], (size_t)t->tok.len[b], tmp + la + 1);
        cJSON_AddItemToArray(merges, cJSON_CreateString(tmp));
    }
    text = cJSON_Print(root);
out:
    free(tmp);
    cJSON_Delete(root);
    return text;
}

hs_status hs_tokenizer_save(const hs_tokenizer *t, const char *path) {
    if (!t || !path) return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_save: NULL argument");
    char *text = hs_tokenizer_to_json(t);
    if (!text) return hs_fail(HS_ERR_NOMEM, "out of memory serialising the tokenizer");
    size_t n = strlen(text);
    text[n] = '\n'; /* a final newline; the NUL is not written */
    hs_status st = hs_file_write_atomic(path, text, n + 1);
    free(text);
    return st;
}

static hs_status load_fail(hs_tokenizer *t, cJSON *root, const char *what) {
    hs_tokenizer_free(t);
    cJSON_Delete(root);
    return hs_fail(HS_ERR_CORRUPT, "tokenizer.json: %s", what);
}

hs_status hs_tokenizer_from_json(const char *json, size_t len, hs_tokenizer **out) {
    if (!json || !out) return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_from_json: NULL argument");
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return hs_fail(HS_ERR_CORRUPT, "tokenizer.json is not valid JSON");
    hs_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        return hs_fail(HS_ERR_NOMEM, "out of memory");
    }
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsObject(model) || !cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
        return load_fail(t, root, "no BPE \"model\" (only byte-level BPE tokenizers are supported)");
    cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    cJSON *pre_type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(pre_type) || strcmp(pre_type->valuestring, "ByteLevel"))
        return load_fail(t, root, "the pre_tokenizer is not ByteLevel");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return load_fail(t, root, "model.vocab must be an object and model.merges an array");
    int V = cJSON_GetArraySize(vocab);
    if (V < 256 || V > HS_TOKENIZER_MAX_VOCAB)
        return load_fail(t, root, "the vocabulary must have 256..65536 entries");

    /* Tokens by id: the ids must be exactly 0..V-1. */
    int32_t *order = malloc((size_t)V * sizeof *order);
    unsigned char **tb = calloc((size_t)V, sizeof *tb);
    long *tl = calloc((size_t)V, sizeof *tl);
    if (!order || !tb || !tl) {
        free(order);
        free(tb);
        free(tl);
        hs_tokenizer_free(t);
        cJSON_Delete(root);
        return hs_fail(HS_ERR_NOMEM, "out of memory");
    }
    const char *err = NULL;
    for (int i = 0; i < V; i++) order[i] = -1;
    cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= V ||
            it->valuedouble != (double)(int)it->valuedouble) {
            err = "a vocab id is not an integer in [0, vocab size)";
            break;
        }
        int id = (int)it->valuedouble;
        if (tb[id]) {
            err = "two vocab entries share one id";
            break;
        }
        size_t n = strlen(it->string);
        tb[id] = malloc(n + 1);
        if (!tb[id]) {
            err = "out of memory";
            break;
        }
        tl[id] = bl_to_bytes(it->string, n, tb[id]);
        if (tl[id] < 0) {
            err = "a vocab entry is not a byte-level (GPT-2 byte-to-unicode) string";
            break;
        }
    }
    for (int id = 0; !err && id < V; id++) {
        if (!tb[id]) err = "vocab ids are not the dense range 0..size-1";
        else if (strtab_find(&t->tok, tb[id], (size_t)tl[id]) >= 0)
            err = "two vocab entries stand for the same bytes";
        else if (strtab_add_h(&t->tok, tb[id], (size_t)tl[id], hash_bytes(tb[id], (size_t)tl[id])) !=
                 id)
            err = "out of memory";
    }
    for (int id = 0; id < V; id++) free(tb[id]);
    free(tb);
    free(tl);
    free(order);
    if (err) return load_fail(t, root, err);
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = strtab_find(&t->tok, &c, 1);
        if (t->byte_id[b] < 0)
            return load_fail(t, root, "a single-byte token is missing (not a byte-level vocab)");
    }

    int M = cJSON_GetArraySize(merges);
    if (merges_reserve(t, M) != 0) return load_fail(t, root, "out of memory");
    unsigned char *buf = NULL;
    size_t buf_cap = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *sa = NULL, *sb = NULL;
        size_t na = 0, nb = 0;
        if (cJSON_IsString(it)) { /* "A B" */
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                err = "a merge is not \"LEFT RIGHT\"";
                break;
            }
            sa = s;
            na = (size_t)(sp - s);
            sb = sp + 1;
            nb = strlen(sb);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) { /* ["A", "B"] */
            sa = cJSON_GetArrayItem(it, 0)->valuestring;
            sb = cJSON_GetArrayItem(it, 1)->valuestring;
            na = strlen(sa);
            nb = strlen(sb);
        } else {
            err = "a merge is neither \"LEFT RIGHT\" nor [LEFT, RIGHT]";
            break;
        }
        if (na + nb > buf_cap) {
            buf_cap = 2 * (na + nb);
            unsigned char *q = realloc(buf, buf_cap);
            if (!q) {
                err = "out of memory";
                break;
            }
            buf = q;
        }
        long la = bl_to_bytes(sa, na, buf), lb = la >= 0 ? bl_to_bytes(sb, nb, buf + la) : -1;
        int32_t a = la > 0 ? strtab_find(&t->tok, buf, (size_t)la) : -1;
        int32_t b = lb > 0 ? strtab_find(&t->tok, buf + la, (size_t)lb) : -1;
        int32_t c = (a >= 0 && b >= 0) ? strtab_find(&t->tok, buf, (size_t)(la + lb)) : -1;
        if (a < 0 || b < 0) {
            err = "a merge names a token that is not in the vocab";
            break;
        }
        if (c < 0) {
            err = "a merge's result is not in the vocab";
            break;
        }
        t->merge_a[t->n_merges] = a;
        t->merge_b[t->n_merges] = b;
        t->merge_c[t->n_merges] = c;
        t->n_merges++;
    }
    free(buf);
    if (err) return load_fail(t, root, err);
    cJSON_Delete(root);
    hs_status st = build_ranks(t);
    if (st != HS_OK) {
        hs_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HS_OK;
}

hs_status hs_tokenizer_load(const char *path, hs_tokenizer **out) {
    if (!path || !out) return hs_fail(HS_ERR_INVALID_ARG, "hs_tokenizer_load: NULL argument");
    char *text;
    size_t n;
    hs_status st = hs_file_read_all(path, (size_t)1 << 30, &text, &n);
    if (st != HS_OK) return st;
    st = hs_tokenizer_from_json(text, n, out);
    free(text);
    if (st == HS_ERR_CORRUPT) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", hs_last_error());
        return hs_fail(HS_ERR_CORRUPT, "'%s': %s", path, msg);
    }
    return st;
}
