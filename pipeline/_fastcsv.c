/* Numeric CSV bodies to float64 rows: the plain decimal fields IMU exports are made of.
 *
 * parse(data, start, n_cols, out, by_column=False) reads the rows of `data` (a bytes-like
 * object) from byte offset `start` (after the header line) into `out` (a writable,
 * C-contiguous float64 buffer of rows x n_cols, or with `by_column` of n_cols x rows: each
 * column contiguous, as the signal code reads channels) and returns (n_rows, status, row):
 * status 0 when every row was read; otherwise the 0-based data row where reading stopped
 * and why:
 *   1  a field that is not a plain decimal number, an empty field or nan (quotes, text,
 *      inf, a blank line...), 2  a row with another number of fields, 3  `out` is full.
 * The caller then reads the file with a general CSV reader, so this never decides what an
 * unusual file means. Empty fields and nan/NaN/NAN are NaN (missing).
 *
 * The GIL is released while parsing, so threads can parse files side by side.
 * Values are correctly rounded, as a general reader's: a mantissa of at most 19 significant
 * digits that fits in 53 bits, scaled by 10^e with |e| <= 22, is exact before one IEEE
 * multiplication or division (Clinger's fast path); any other number goes through
 * PyOS_string_to_double (correctly rounded). On x86-64 a row of short plain fields is read
 * 16 bytes a field at a time (`field16`), its field ends found first for the whole row with
 * AVX2 (`row_avx2`: 7.6 against 8.9 ns a field on the imu bench's files, interleaved runs)
 * or one field at a time with SSE4.1 (`row_sse`, rows over 128 bytes or no AVX2); any other
 * row is read field by field, with the same values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

enum { OK = 0, BAD_FIELD = 1, BAD_WIDTH = 2, FULL = 3 };

static int is_end(char c) { return c == ',' || c == '\n' || c == '\r'; }

/* The number in [s, e) through Python's correctly rounded parser; -1 if it is not one. */
static int slow_number(const char *s, const char *e, double *out) {
    char text[128];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof(text)) return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    char *stop = NULL;
    PyGILState_STATE gil = PyGILState_Ensure();  /* parse() runs without the GIL */
    double v = PyOS_string_to_double(text, &stop, NULL);
    int failed = v == -1.0 && PyErr_Occurred();
    if (failed) PyErr_Clear();
    PyGILState_Release(gil);
    if (failed) return -1;
    if (stop != text + n || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int is_nan_word(const char *s, const char *e) {
    return e - s == 3 && (s[0] == 'n' || s[0] == 'N') && (s[1] == 'a' || s[1] == 'A') &&
           (s[2] == 'n' || s[2] == 'N');
}

/* One field from *pp; leaves *pp on its terminator (',', '\n', '\r' or end). */
static int field_scalar(const char **pp, const char *end, double *out);

static const uint64_t POW10_INT[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                      100000000};

static inline uint64_t load8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* How many of the 8 bytes in v (first byte lowest) are ASCII digits before a non-digit. */
static inline int digit_run(uint64_t v) {
    uint64_t x = v ^ 0x3030303030303030ULL;
    uint64_t flags = ((x + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
    return flags ? __builtin_ctzll(flags) >> 3 : 8;
}

/* The value of the first k (1..8) digit bytes of v. */
static inline uint64_t digits_value(uint64_t v, int k) {
    v = (v - 0x3030303030303030ULL) << (8 * (8 - k));
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
         (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    return v;
}

/* Plain [-+]ddd[.ddd] fields of at most 7 digits before and after the dot, 8 bytes at a
 * time; anything else goes to field_scalar. */
static int field(const char **pp, const char *end, double *out) {
    const char *p = *pp;
    if (end - p < 24) return field_scalar(pp, end, out);
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    int k1 = digit_run(load8(p));
    if (k1 == 0 || k1 == 8) return field_scalar(pp, end, out);
    uint64_t mant = digits_value(load8(p), k1);
    p += k1;
    int k2 = 0;
    if (*p == '.') {
        p++;
        uint64_t v = load8(p);
        k2 = digit_run(v);
        if (k2 == 8) return field_scalar(pp, end, out);
        if (k2) mant = mant * POW10_INT[k2] + digits_value(v, k2);
        p += k2;
    }
    if (!is_end(*p)) return field_scalar(pp, end, out);
    *pp = p;
    double v = (double)mant;  /* < 10^14: exact */
    if (k2) v /= POW10[k2];
    *out = neg ? -v : v;
    return 0;
}

static int field_scalar(const char **pp, const char *end, double *out) {
    const char *p = *pp, *s = p;
    int neg = 0, digits = 0, significant = 0, exp10 = 0;
    uint64_t mant = 0;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    for (; p < end && (unsigned)(*p - '0') < 10; p++, digits++) {
        if (mant || *p != '0') {
            if (significant++ < 19) mant = mant * 10 + (uint64_t)(*p - '0');
            else exp10++;
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && (unsigned)(*p - '0') < 10; p++, digits++) {
            if (mant || *p != '0') {
                if (significant++ < 19) {
                    mant = mant * 10 + (uint64_t)(*p - '0');
                    exp10--;
                }
            } else {
                exp10--;
            }
        }
    }
    if (digits && p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int eneg = 0, e = 0, edigits = 0;
        if (q < end && (*q == '-' || *q == '+')) eneg = *q++ == '-';
        for (; q < end && (unsigned)(*q - '0') < 10; q++, edigits++)
            if (e < 100000) e = e * 10 + (*q - '0');
        if (!edigits) return -1;
        exp10 += eneg ? -e : e;
        p = q;
    }
    if (p < end && !is_end(*p)) {  /* not a plain number: nan, or hand it over */
        while (p < end && !is_end(*p)) p++;
        *pp = p;
        if (is_nan_word(s, p)) {
            *out = NAN;
            return 0;
        }
        return -1;
    }
    *pp = p;
    if (!digits) {
        if (p == s) {  /* empty field: missing */
            *out = NAN;
            return 0;
        }
        return -1;  /* a lone sign or dot */
    }
    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (significant <= 19 && mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / POW10[-exp10] : v * POW10[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    return slow_number(s, p, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SSE_ROWS 1

/* The plain field [p, p + len) whose first 16 bytes are `raw` (SSE4.1): its digits become
 * the mantissa without a branch, shuffled right-aligned past the sign and the dot, then
 * summed in pairs (10^1, 10^2, 10^4, 10^8). A field of 1..15 bytes and at most 15 digits,
 * [-+]digits[.digits], is exact before the one division (as `field`); 0 for anything else. */
typedef struct {
    __m128i zero, nine, dot, by10, by100, by10000;
} Consts16;

/* SHUFFLE[(len * 16 + at + 1) * 2 + sign]: the byte shuffle that right-aligns the digits of
 * a field of `len` bytes with its dot at `at` (-1: none) and a leading sign or not: output
 * byte j takes the (15 - j)-th digit from the end, input len - 16 + j, one less at or
 * before the dot, none (-1) before the first digit. Built once (`init_shuffles`). */
static int8_t SHUFFLE[16 * 16 * 2][16] __attribute__((aligned(16)));

static void init_shuffles(void) {
    for (int len = 0; len < 16; len++)
        for (int at = -1; at < 15; at++)
            for (int sign = 0; sign < 2; sign++)
                for (int j = 0; j < 16; j++) {
                    int from = j + len - 16;
                    if (at + 1 > from) from -= 1;
                    SHUFFLE[(len * 16 + at + 1) * 2 + sign][j] = (int8_t)(sign > from ? -1 : from);
                }
}

/* Built once per row, kept in registers across its fields (`field16` is inlined). */
__attribute__((target("sse4.1"), always_inline)) static inline Consts16 consts16(void) {
    Consts16 k;
    k.zero = _mm_set1_epi8('0');
    k.nine = _mm_set1_epi8(9);
    k.dot = _mm_set1_epi8('.');
    k.by10 = _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1);
    k.by100 = _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1);
    k.by10000 = _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1);
    return k;
}

__attribute__((target("sse4.1"), always_inline)) static inline int field16(const Consts16 *k, __m128i raw,
                                                                            const char *p, int len,
                                                                            double *out) {
    if (len <= 0 || len > 15) return 0;
    unsigned inside = (1u << len) - 1;
    __m128i d = _mm_sub_epi8(raw, k->zero);
    unsigned digits = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, k->nine), d)) & inside;
    unsigned dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(raw, k->dot)) & inside;
    int neg = p[0] == '-', sign = neg | (p[0] == '+');
    int n_digits = __builtin_popcount(digits);
    if ((digits | dots | (unsigned)sign) != inside || (dots & (dots - 1)) || n_digits == 0)
        return 0;
    int at = dots ? __builtin_ctz(dots) : -1;
    __m128i from = _mm_load_si128((const __m128i *)SHUFFLE[(len * 16 + at + 1) * 2 + sign]);
    __m128i v = _mm_maddubs_epi16(_mm_shuffle_epi8(d, from), k->by10);
    v = _mm_madd_epi16(v, k->by100);
    v = _mm_madd_epi16(_mm_packus_epi32(v, v), k->by10000);
    uint64_t mant = (uint64_t)(uint32_t)_mm_cvtsi128_si32(v) * 100000000ULL +
                    (uint32_t)_mm_extract_epi32(v, 1);
    __m128d x = _mm_set_sd((double)mant / POW10[dots ? len - 1 - at : 0]);  /* < 10^15: exact */
    /* the sign as a bit, not a branch: signs of IMU samples are as good as random */
    __m128d sign_bit = _mm_castsi128_pd(_mm_cvtsi64_si128((long long)((uint64_t)neg << 63)));
    _mm_store_sd(out, _mm_xor_pd(x, sign_bit));
    return 1;
}

/* A whole row of plain fields, 16 bytes at a time (SSE4.1): each field's end comes from
 * one compare of its 16 bytes, then `field16`. Returns the position after the row's line
 * end, or NULL for a row with anything else (another field or line end, a shorter tail):
 * `parse` then reads that row field by field. */
__attribute__((target("sse4.1"))) static const char *row_sse(const char *p, const char *end,
                                                             Py_ssize_t n_cols, double *values,
                                                             Py_ssize_t col_step) {
    const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    const Consts16 k = consts16();
    for (Py_ssize_t col = 0; col < n_cols; col++) {
        if (end - p < 16) return NULL;
        __m128i raw = _mm_loadu_si128((const __m128i *)p);
        __m128i sep = _mm_or_si128(_mm_cmpeq_epi8(raw, comma),
                                   _mm_or_si128(_mm_cmpeq_epi8(raw, lf), _mm_cmpeq_epi8(raw, cr)));
        unsigned seps = (unsigned)_mm_movemask_epi8(sep);
        if (!seps) return NULL;
        int len = __builtin_ctz(seps);
        char term = p[len];
        if ((col + 1 < n_cols) != (term == ',') || !field16(&k, raw, p, len, values + col * col_step))
            return NULL;
        p += len + 1;
        if (term == '\r' && p < end && *p == '\n') p++;
    }
    return p;
}

/* Where the separators (',', '\n', '\r') are among the 64 bytes at p (AVX2): bit i for p[i]. */
__attribute__((target("avx2"), always_inline)) static inline uint64_t separators64(const char *p) {
    const __m256i comma = _mm256_set1_epi8(','), lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
    uint64_t mask = 0;
    for (int half = 0; half < 2; half++) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 32 * half));
        __m256i sep = _mm256_or_si256(_mm256_cmpeq_epi8(raw, comma),
                                      _mm256_or_si256(_mm256_cmpeq_epi8(raw, lf), _mm256_cmpeq_epi8(raw, cr)));
        mask |= (uint64_t)(uint32_t)_mm256_movemask_epi8(sep) << (32 * half);
    }
    return mask;
}

/* `row_sse` with every field end of the row known first (AVX2): the separators of the
 * row's first 128 bytes come from four 32-byte compares, so a field's position waits for
 * nothing but the previous one's bit (the 16-byte compare, bit scan and add per field were
 * a chain through the whole row). Rows longer than 128 bytes go to `row_sse`. */
__attribute__((target("avx2"))) static const char *row_avx2(const char *p, const char *end,
                                                           Py_ssize_t n_cols, double *values,
                                                           Py_ssize_t col_step) {
    if (end - p < 144) return NULL;  /* 128 bytes of separators + one field's 16 bytes */
    const Consts16 k = consts16();
    uint64_t seps = separators64(p), later = separators64(p + 64);
    int off = 0, base = 0;
    char term = 0;
    for (Py_ssize_t col = 0; col < n_cols; col++) {
        if (!seps) {
            if (base) return NULL;  /* a row of more than 128 bytes */
            seps = later;
            base = 64;
            if (!seps) return NULL;
        }
        int at = base + __builtin_ctzll(seps);
        seps &= seps - 1;
        term = p[at];
        if ((col + 1 < n_cols) != (term == ',') ||
            !field16(&k, _mm_loadu_si128((const __m128i *)(p + off)), p + off, at - off,
                     values + col * col_step))
            return NULL;
        off = at + 1;
    }
    p += off;
    if (term == '\r' && p < end && *p == '\n') p++;
    return p;
}
#endif

static PyObject *parse(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data, out;
    Py_ssize_t start, n_cols;
    int by_column = 0;
    if (!PyArg_ParseTuple(args, "y*nnw*|p", &data, &start, &n_cols, &out, &by_column)) return NULL;
    const char *p = (const char *)data.buf + (start < data.len ? start : data.len);
    const char *end = (const char *)data.buf + data.len;
    double *dst = (double *)out.buf;
    Py_ssize_t capacity = n_cols > 0 ? out.len / (Py_ssize_t)sizeof(double) / n_cols : 0;
    /* value (row, col) at dst[row * row_step + col * col_step] */
    Py_ssize_t row_step = by_column ? 1 : n_cols, col_step = by_column ? capacity : 1;
    Py_ssize_t row = 0;
    int status = OK;
#ifdef HAVE_SSE_ROWS
    int use_sse = __builtin_cpu_supports("sse4.1"), use_avx2 = use_sse && __builtin_cpu_supports("avx2");
#endif
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        if (*p == '\n' || *p == '\r') {  /* a blank line: only line ends may follow */
            const char *q = p;
            while (q < end && (*q == '\n' || *q == '\r')) q++;
            if (q < end) status = BAD_FIELD;
            break;
        }
        if (row >= capacity) {
            status = FULL;
            break;
        }
        double *values = dst + row * row_step;
#ifdef HAVE_SSE_ROWS
        if (use_sse) {
            const char *next = use_avx2 ? row_avx2(p, end, n_cols, values, col_step) : NULL;
            if (next == NULL) next = row_sse(p, end, n_cols, values, col_step);
            if (next != NULL) {
                p = next;
                row++;
                continue;
            }
        }
#endif
        Py_ssize_t col = 0;
        for (;;) {
            if (col >= n_cols) {
                status = BAD_WIDTH;
                break;
            }
            if (field(&p, end, values + col * col_step) < 0) {
                status = BAD_FIELD;
                break;
            }
            col++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            break;
        }
        if (status != OK) break;
        if (col != n_cols) {
            status = BAD_WIDTH;
            break;
        }
        if (p < end && *p == '\r') p++;
        if (p < end && *p == '\n') p++;
        row++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return Py_BuildValue("nin", status == OK ? row : 0, status, row);
}

/* count_lines(data, start): line ends after `start`, plus one for a last line without one:
 * an upper bound on the rows `parse` reads from there. */
static PyObject *count_lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*n", &data, &start)) return NULL;
    const char *p = (const char *)data.buf + (start < data.len ? start : data.len);
    const char *end = (const char *)data.buf + data.len;
    Py_ssize_t n = 0;
    int tail = p < end && end[-1] != '\n';
    Py_BEGIN_ALLOW_THREADS
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(n + tail);
}

static PyMethodDef METHODS[] = {
    {"parse", parse, METH_VARARGS, "parse(data, start, n_cols, out) -> (n_rows, status, row)"},
    {"count_lines", count_lines, METH_VARARGS, "count_lines(data, start) -> line count"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_fastcsv", NULL, -1, METHODS,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastcsv(void) {
#ifdef HAVE_SSE_ROWS
    init_shuffles();
#endif
    return PyModule_Create(&MODULE);
}
