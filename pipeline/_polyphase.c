/* Polyphase FIR resampling of one channel, the arithmetic of scipy.signal.resample_poly.
 *
 * fir(columns, gains, taps, up, down, out) writes output samples m = 0 .. n_out - 1,
 * n_out = ceil(n_in * up / down), of every channel into `out` (a writable, contiguous
 * float32 buffer of at least n_out rows x n_channels) and returns n_out. `columns` holds
 * each channel's n_in >= 2 float64 samples one after another (n_channels x n_in, C order),
 * `gains` the channels' float64 unit factors, `taps` the float32 filter h (K values,
 * already times `up`); per channel:
 *
 *   y[m] = sum_n x[n] * h[m * down + (K - 1) / 2 - n * up]   (0 <= index < K)
 *
 * with x[n] = float32(column[n] * gain) and, outside 0 .. n_in - 1, the line through the
 * first and last samples (resample_poly's padtype="line"): float32(e0 + n * slope) before
 * the start, float32(e1 + (n - n_in + 1) * slope) past the end, e0, e1 the float32 end
 * samples and slope = (e1 - e0) / (n_in - 1) in float32, the extension in float64 as
 * numpy computes it. Sums run in float32, taps in order.
 *
 * Output m with phase r = m mod up uses taps h[phi], h[phi + up], ... (phi fixed per r)
 * against inputs b(m), b(m) - 1, ...; with down == 1 (upsampling from 25, 50, 100 Hz)
 * b grows by one per output of a phase, so 32 outputs of a phase are summed side by side
 * in vector registers (GCC vector extensions; on x86-64 also compiled for AVX2 + FMA and
 * picked at load time). Other ratios sum each output as a dot product of 8-wide pieces.
 * The GIL is released while filtering.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

static Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* ext[i] = x[lo + i], i < len: the scaled samples and their line extension (doc above),
 * lo < 0 <= n_in - 1 < lo + len. */
CLONES static void extend(const double *column, Py_ssize_t n_in, double gain, Py_ssize_t lo,
                          Py_ssize_t len, float *ext) {
    float e0 = (float)(column[0] * gain), e1 = (float)(column[n_in - 1] * gain);
    float slope = (e1 - e0) / (float)(n_in - 1);
    float *inside = ext - lo;  /* inside[n] = x[n] */
    for (Py_ssize_t n = lo; n < 0; n++) inside[n] = (float)((double)e0 + (double)n * (double)slope);
    for (Py_ssize_t n = 0; n < n_in; n++) inside[n] = (float)(column[n] * gain);
    for (Py_ssize_t n = n_in; n < lo + len; n++)
        inside[n] = (float)((double)e1 + (double)(n - (n_in - 1)) * (double)slope);
}

#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v8f)) /* unaligned; a function returning a
                                                      vector would change the ABI */

/* n_k outputs of one phase when down == 1: y_k = sum_j g[j] * src[k - j], written to
 * dst[k * step]. 64 outputs at a time in 8 accumulators: an FMA's latency is about 4 of
 * its issue slots, so fewer would wait on each other. */
CLONES static void phase_up(const float *src, const float *g, Py_ssize_t n_taps, Py_ssize_t n_k,
                            float *dst, Py_ssize_t step) {
    Py_ssize_t k = 0;
    for (; k + 64 <= n_k; k += 64) {
        v8f a[8] = {{0}};
        for (Py_ssize_t j = 0; j < n_taps; j++) {
            const float *s = src + k - j;
            float gj = g[j];
            for (int v = 0; v < 8; v++) {
                v8f xv;
                LOAD8(xv, s + 8 * v);
                a[v] += gj * xv;
            }
        }
        float y[64];
        memcpy(y, a, sizeof y);
        for (int i = 0; i < 64; i++) dst[(k + i) * step] = y[i];
    }
    for (; k < n_k; k++) {
        float acc = 0.0f;
        for (Py_ssize_t j = 0; j < n_taps; j++) acc += g[j] * src[k - j];
        dst[k * step] = acc;
    }
}

/* One output as a dot product: sum_i rev[i] * src[i], i < width (a multiple of 8). */
CLONES static float dot(const float *rev, const float *src, Py_ssize_t width) {
    v8f acc = {0}, r, x;
    for (Py_ssize_t i = 0; i < width; i += 8) {
        LOAD8(r, rev + i);
        LOAD8(x, src + i);
        acc += r * x;
    }
    float a[8];
    memcpy(a, &acc, 32);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

#define BLOCK 256 /* outputs per phase and channel before the next channel: the rows they
                     fill stay in cache until every channel has written them */

static PyObject *fir(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer columns, gains, taps, out;
    Py_ssize_t up, down;
    if (!PyArg_ParseTuple(args, "y*y*y*nnw*", &columns, &gains, &taps, &up, &down, &out)) return NULL;
    Py_ssize_t n_ch = gains.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t n_in = n_ch > 0 ? columns.len / (Py_ssize_t)sizeof(double) / n_ch : 0;
    Py_ssize_t n_taps = taps.len / (Py_ssize_t)sizeof(float);
    Py_ssize_t n_out = n_in >= 2 && up > 0 && down > 0 ? (n_in * up + down - 1) / down : 0;
    const char *error = NULL;
    if (n_ch < 1 || n_in < 2 || up < 1 || down < 1 || n_taps < 1)
        error = "need channels, >= 2 samples, up, down >= 1 and taps";
    else if (columns.len != n_ch * n_in * (Py_ssize_t)sizeof(double))
        error = "columns must hold n_channels x n_in float64 values";
    else if (out.len < n_out * n_ch * (Py_ssize_t)sizeof(float))
        error = "out has fewer rows than the output";
    if (error) {
        PyBuffer_Release(&columns);
        PyBuffer_Release(&gains);
        PyBuffer_Release(&taps);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    const double *x = (const double *)columns.buf, *gain = (const double *)gains.buf;
    const float *h = (const float *)taps.buf;
    float *dst = (float *)out.buf;
    Py_ssize_t half = (n_taps - 1) / 2;
    Py_ssize_t per_phase = (n_taps + up - 1) / up;  /* most taps any phase has */
    Py_ssize_t width = (per_phase + 7) / 8 * 8;
    /* inputs any output reads, with room for a dot product's zero-tap lead-in */
    Py_ssize_t lo = floor_div(half - (n_taps - 1), up) - width;
    Py_ssize_t hi = floor_div((n_out - 1) * down + half, up);
    Py_ssize_t len = hi - lo + 1;
    float *ext = malloc((size_t)(len * n_ch) * sizeof(float));  /* channel c at c * len */
    float *g = calloc((size_t)(up * width), sizeof(float));  /* phase phi: g[phi * width + j] */
    int ok = ext != NULL && g != NULL;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t c = 0; c < n_ch; c++) extend(x + c * n_in, n_in, gain[c], lo, len, ext + c * len);
        for (Py_ssize_t phi = 0; phi < up; phi++)
            for (Py_ssize_t j = 0; phi + j * up < n_taps; j++)
                g[phi * width + (down == 1 ? j : width - 1 - j)] = h[phi + j * up];
        Py_ssize_t n_k_max = (n_out - 1) / up + 1;
        for (Py_ssize_t k0 = 0; k0 < n_k_max; k0 += BLOCK) {
            for (Py_ssize_t c = 0; c < n_ch; c++) {
                for (Py_ssize_t r = 0; r < up && r < n_out; r++) {
                    Py_ssize_t p = r * down + half, phi = p % up, b = p / up - lo;
                    Py_ssize_t n_k = (n_out - 1 - r) / up + 1, k_taps = (n_taps - 1 - phi) / up + 1;
                    Py_ssize_t k1 = k0 + BLOCK < n_k ? k0 + BLOCK : n_k;
                    if (k1 <= k0) continue;
                    const float *gp = g + phi * width, *src = ext + c * len + b;
                    float *row = dst + (r + k0 * up) * n_ch + c;
                    if (down == 1) {
                        phase_up(src + k0, gp, k_taps, k1 - k0, row, up * n_ch);
                    } else {  /* output r + k * up reads inputs up to b + k * down */
                        for (Py_ssize_t k = k0; k < k1; k++, row += up * n_ch)
                            *row = dot(gp, src + k * down - (width - 1), width);
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(ext);
    free(g);
    PyBuffer_Release(&columns);
    PyBuffer_Release(&gains);
    PyBuffer_Release(&taps);
    PyBuffer_Release(&out);
    if (!ok) return PyErr_NoMemory();
    return PyLong_FromSsize_t(n_out);
}

static PyMethodDef METHODS[] = {
    {"fir", fir, METH_VARARGS, "fir(columns, gains, taps, up, down, out) -> n_out"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_polyphase", NULL, -1, METHODS,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__polyphase(void) { return PyModule_Create(&MODULE); }
