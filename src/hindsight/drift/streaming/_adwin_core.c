/* ADWIN's per-value state machine, compiled: the hot path of ADWIN.update.
 *
 * This is the C twin of ``_PyCore`` in adwin.py. Both keep the same state and do the
 * same floating-point operations in the same order, so detections and state are bit for
 * bit those of the pure-Python core and of ADWIN.update_many:
 *
 * - values wait in a buffer; every ``clock`` values they enter the window: shifted by
 *   the window's first value ``c``, their running sums (one at a time, from ``s``) become
 *   the end sums of new one-value buckets, and ``q`` gets their squares one at a time;
 * - the histogram keeps the bucket ends (positions from the window's start) and the
 *   running sum at each, oldest first. Merging two buckets drops the older one's end, so
 *   after a tick the ends kept are exactly those of ``bucket_counts(w, max_buckets)``
 *   (see adwin.py), and the histogram is filtered down to them;
 * - once the window holds more than ``grace_period`` values, every end at least
 *   ``min_window_length`` from both sides is a split, checked with adwin._cuts's
 *   formula, and a cut restarts the window and counts a drift.
 *
 * Build with -ffp-contract=off (hatch_build.py does): a fused multiply-add would round
 * differently from the Python and NumPy paths.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

typedef long long i64;

typedef struct {
    PyObject_HEAD
    PyObject *owner;   /* what update() returns: the ADWIN detector */
    PyObject *convert; /* slow path for values that are not finite floats or ints */
    double delta;
    i64 clock, max_buckets, mwl, grace;
    /* values waiting for the next tick */
    double *buf;
    i64 nb, buf_cap;
    /* the histogram: bucket ends and running sums there, oldest first */
    i64 *ends;
    double *sums;
    i64 nk, cap;
    /* the window: width, shift (its first value), shifted sum and sum of squares */
    i64 w;
    double c, s, q;
    /* counters since the detector was made or reset */
    i64 n_before, drift_at, n_detections;
} Core;

static int
grow(Core *self, i64 need)
{
    if (need <= self->cap) {
        return 0;
    }
    i64 cap = self->cap ? self->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    i64 *ends = PyMem_Realloc(self->ends, (size_t)cap * sizeof(i64));
    if (ends == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->ends = ends;
    double *sums = PyMem_Realloc(self->sums, (size_t)cap * sizeof(double));
    if (sums == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->sums = sums;
    self->cap = cap;
    return 0;
}

static int
grow_buf(Core *self, i64 need)
{
    if (need <= self->buf_cap) {
        return 0;
    }
    i64 cap = self->buf_cap ? self->buf_cap : 32;
    while (cap < need) {
        cap *= 2;
    }
    double *buf = PyMem_Realloc(self->buf, (size_t)cap * sizeof(double));
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->buf = buf;
    self->buf_cap = cap;
    return 0;
}

static void
clear_window(Core *self)
{
    self->nb = 0;
    self->nk = 0;
    self->w = 0;
    self->c = 0.0;
    self->s = 0.0;
    self->q = 0.0;
}

/* Keep only the bucket ends a window of w values has (adwin.bucket_counts), in place. */
static int
merge(Core *self)
{
    i64 counts[64];
    int rows = 0;
    i64 rest = self->w, m = self->max_buckets;
    while (rest) {
        i64 c = rest <= m ? rest : m - ((rest - m) & 1);
        counts[rows++] = c;
        rest = (rest - c) >> 1;
    }
    i64 end = 0, j = 0, k = 0;
    for (int i = rows - 1; i >= 0; i--) {
        for (i64 b = 0; b < counts[i]; b++) {
            end += (i64)1 << i;
            while (j < self->nk && self->ends[j] < end) {
                j++;
            }
            if (j == self->nk || self->ends[j] != end) {
                PyErr_SetString(PyExc_SystemError, "ADWIN histogram lost a bucket end");
                return -1;
            }
            self->ends[k] = end;
            self->sums[k] = self->sums[j];
            k++;
            j++;
        }
    }
    self->nk = k;
    return 0;
}

/* adwin._cuts at every judged end, for the window as it is after a tick. */
static int
cut(const Core *self)
{
    const i64 w = self->w, mwl = self->mwl;
    i64 lo = 0, hi = self->nk;
    while (lo < hi && self->ends[lo] < mwl) {
        lo++;
    }
    while (hi > lo && self->ends[hi - 1] > w - mwl) {
        hi--;
    }
    if (lo >= hi) {
        return 0;
    }
    const double wf = (double)w, s = self->s, q = self->q;
    double v = (q - s * s / wf) / wf;
    v = v > 0.0 ? v : 0.0;
    const double dd = log(2.0 * log(wf) / self->delta);
    const double shift = (double)mwl - 1.0;
    for (i64 j = lo; j < hi; j++) {
        const double n0 = (double)self->ends[j];
        const double sb = self->sums[j];
        const double n1 = wf - n0;
        const double diff = fabs(sb / n0 - (s - sb) / n1);
        const double m = 1.0 / (n0 - shift) + 1.0 / (n1 - shift);
        const double eps = sqrt(2.0 * m * v * dd) + (2.0 / 3.0 * dd) * m;
        if (diff > eps) {
            return 1;
        }
    }
    return 0;
}

/* Move the buffered values into the histogram and check for a cut. */
static int
tick(Core *self)
{
    const i64 k = self->nb, w0 = self->w;
    if (grow(self, self->nk + k) < 0) {
        return -1;
    }
    if (!w0) {
        self->c = self->buf[0];
    }
    const double c = self->c;
    double s = self->s, q = self->q;
    i64 *ends = self->ends + self->nk;
    double *sums = self->sums + self->nk;
    for (i64 i = 0; i < k; i++) {
        const double y = self->buf[i] - c;
        s = s + y;
        q = q + y * y;
        ends[i] = w0 + i + 1;
        sums[i] = s;
    }
    self->nk += k;
    self->nb = 0;
    self->w = w0 + k;
    self->s = s;
    self->q = q;
    if (merge(self) < 0) {
        return -1;
    }
    if (self->w > self->grace && cut(self)) {
        self->n_before += self->w;
        self->drift_at = self->n_before;
        self->n_detections += 1;
        clear_window(self);
    }
    return 0;
}

static PyObject *
Core_update(Core *self, PyObject *x)
{
    double v;
    if (self->owner == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core.__init__ was not called");
        return NULL;
    }
    if (PyFloat_CheckExact(x)) {
        v = PyFloat_AS_DOUBLE(x);
        if (!isfinite(v)) {
            goto slow;
        }
    }
    else if (PyLong_CheckExact(x)) {
        v = PyLong_AsDouble(x);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            goto slow;
        }
    }
    else {
        goto slow;
    }
    goto fed;
slow: {
        /* The Python side converts or raises ADWIN's own error. */
        PyObject *r = PyObject_CallOneArg(self->convert, x);
        if (r == NULL) {
            return NULL;
        }
        if (!PyFloat_Check(r)) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_TypeError, "ADWIN's converter must return a float");
            return NULL;
        }
        v = PyFloat_AS_DOUBLE(r);
        Py_DECREF(r);
        if (!isfinite(v)) {
            PyErr_SetString(PyExc_ValueError, "ADWIN's converter returned a non-finite float");
            return NULL;
        }
    }
fed:
    if (self->nb == self->buf_cap && grow_buf(self, self->nb + 1) < 0) {
        return NULL;
    }
    self->buf[self->nb++] = v;
    if (self->nb == self->clock && tick(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->owner);
}

static PyObject *
Core_reset(Core *self, PyObject *Py_UNUSED(ignored))
{
    clear_window(self);
    self->n_before = 0;
    self->drift_at = -1;
    self->n_detections = 0;
    Py_RETURN_NONE;
}

/* (buffer, ends, sums, w, c, s, q, n_before, drift_at, n_detections) */
static PyObject *
Core_get_state(Core *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *buf = PyList_New((Py_ssize_t)self->nb);
    PyObject *ends = PyList_New((Py_ssize_t)self->nk);
    PyObject *sums = PyList_New((Py_ssize_t)self->nk);
    if (buf == NULL || ends == NULL || sums == NULL) {
        goto error;
    }
    for (i64 i = 0; i < self->nb; i++) {
        PyObject *o = PyFloat_FromDouble(self->buf[i]);
        if (o == NULL) {
            goto error;
        }
        PyList_SET_ITEM(buf, (Py_ssize_t)i, o);
    }
    for (i64 i = 0; i < self->nk; i++) {
        PyObject *e = PyLong_FromLongLong(self->ends[i]);
        if (e == NULL) {
            goto error;
        }
        PyList_SET_ITEM(ends, (Py_ssize_t)i, e);
        PyObject *o = PyFloat_FromDouble(self->sums[i]);
        if (o == NULL) {
            goto error;
        }
        PyList_SET_ITEM(sums, (Py_ssize_t)i, o);
    }
    return Py_BuildValue("(NNNLdddLLL)", buf, ends, sums, self->w, self->c, self->s, self->q,
                         self->n_before, self->drift_at, self->n_detections);
error:
    Py_XDECREF(buf);
    Py_XDECREF(ends);
    Py_XDECREF(sums);
    return NULL;
}

static PyObject *
Core_set_state(Core *self, PyObject *state)
{
    PyObject *buf, *ends, *sums;
    i64 w, n_before, drift_at, n_detections;
    double c, s, q;
    if (!PyArg_ParseTuple(state, "OOOLdddLLL:set_state", &buf, &ends, &sums, &w, &c, &s, &q,
                          &n_before, &drift_at, &n_detections)) {
        return NULL;
    }
    PyObject *fb = PySequence_Fast(buf, "set_state: the buffer must be a sequence");
    if (fb == NULL) {
        return NULL;
    }
    PyObject *fe = PySequence_Fast(ends, "set_state: the ends must be a sequence");
    if (fe == NULL) {
        Py_DECREF(fb);
        return NULL;
    }
    PyObject *fs = PySequence_Fast(sums, "set_state: the sums must be a sequence");
    if (fs == NULL) {
        Py_DECREF(fb);
        Py_DECREF(fe);
        return NULL;
    }
    const Py_ssize_t nb = PySequence_Fast_GET_SIZE(fb), nk = PySequence_Fast_GET_SIZE(fe);
    if (nb >= self->clock || PySequence_Fast_GET_SIZE(fs) != nk) {
        PyErr_SetString(PyExc_ValueError, "set_state: inconsistent ADWIN state");
        goto error;
    }
    if (grow_buf(self, nb) < 0 || grow(self, nk) < 0) {
        goto error;
    }
    /* Convert everything before touching the state, so a bad state changes nothing. */
    double *nbuf = PyMem_Malloc((size_t)(nb + 1) * sizeof(double));
    i64 *nends = PyMem_Malloc((size_t)(nk + 1) * sizeof(i64));
    double *nsums = PyMem_Malloc((size_t)(nk + 1) * sizeof(double));
    if (nbuf == NULL || nends == NULL || nsums == NULL) {
        PyMem_Free(nbuf);
        PyMem_Free(nends);
        PyMem_Free(nsums);
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < nb; i++) {
        nbuf[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fb, i));
    }
    for (Py_ssize_t i = 0; i < nk; i++) {
        nends[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fe, i));
        nsums[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fs, i));
    }
    if (PyErr_Occurred()) {
        PyMem_Free(nbuf);
        PyMem_Free(nends);
        PyMem_Free(nsums);
        goto error;
    }
    memcpy(self->buf, nbuf, (size_t)nb * sizeof(double));
    memcpy(self->ends, nends, (size_t)nk * sizeof(i64));
    memcpy(self->sums, nsums, (size_t)nk * sizeof(double));
    PyMem_Free(nbuf);
    PyMem_Free(nends);
    PyMem_Free(nsums);
    self->nb = nb;
    self->nk = nk;
    self->w = w;
    self->c = c;
    self->s = s;
    self->q = q;
    self->n_before = n_before;
    self->drift_at = drift_at;
    self->n_detections = n_detections;
    Py_DECREF(fb);
    Py_DECREF(fe);
    Py_DECREF(fs);
    Py_RETURN_NONE;
error:
    Py_DECREF(fb);
    Py_DECREF(fe);
    Py_DECREF(fs);
    return NULL;
}

static PyObject *
Core_get_drift_detected(Core *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->drift_at == self->n_before + self->w + self->nb);
}

static PyObject *
Core_get_n_seen(Core *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->n_before + self->w + self->nb);
}

static PyObject *
Core_get_n_detections(Core *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->n_detections);
}

static PyObject *
Core_get_width(Core *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->w + self->nb);
}

static int
Core_init(Core *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"owner",       "convert",           "delta",        "clock",
                             "max_buckets", "min_window_length", "grace_period", NULL};
    PyObject *owner, *convert;
    double delta;
    i64 clock, max_buckets, mwl, grace;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOdLLLL:Core", kwlist, &owner, &convert,
                                     &delta, &clock, &max_buckets, &mwl, &grace)) {
        return -1;
    }
    if (!PyCallable_Check(convert) || !(delta > 0.0 && delta < 1.0) || clock < 1 ||
        max_buckets < 2 || mwl < 1 || grace < 1 || clock > ((i64)1 << 40) ||
        max_buckets > ((i64)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "Core: parameters out of range");
        return -1;
    }
    Py_XSETREF(self->owner, Py_NewRef(owner));
    Py_XSETREF(self->convert, Py_NewRef(convert));
    self->delta = delta;
    self->clock = clock;
    self->max_buckets = max_buckets;
    self->mwl = mwl;
    self->grace = grace;
    clear_window(self);
    self->n_before = 0;
    self->drift_at = -1;
    self->n_detections = 0;
    return 0;
}

static int
Core_traverse(Core *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->convert);
    return 0;
}

static int
Core_clear(Core *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->convert);
    return 0;
}

static void
Core_dealloc(Core *self)
{
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    PyMem_Free(self->buf);
    PyMem_Free(self->ends);
    PyMem_Free(self->sums);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Core_methods[] = {
    {"update", (PyCFunction)Core_update, METH_O,
     "Feed one value; return the owner (read drift_detected afterwards)."},
    {"reset", (PyCFunction)Core_reset, METH_NOARGS, "Forget everything, counters included."},
    {"get_state", (PyCFunction)Core_get_state, METH_NOARGS,
     "(buffer, ends, sums, w, c, s, q, n_before, drift_at, n_detections)"},
    {"set_state", (PyCFunction)Core_set_state, METH_O, "Replace the state by get_state's tuple."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Core_getset[] = {
    {"drift_detected", (getter)Core_get_drift_detected, NULL,
     "Whether the last value fed completed a drift.", NULL},
    {"n_seen", (getter)Core_get_n_seen, NULL, "Values fed since made or reset.", NULL},
    {"n_detections", (getter)Core_get_n_detections, NULL, "Drifts since made or reset.", NULL},
    {"width", (getter)Core_get_width, NULL, "Values in the window, buffered ones included.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hindsight.drift.streaming._adwin_core.Core",
    .tp_doc = PyDoc_STR("ADWIN's per-value state machine (the compiled twin of adwin._PyCore)."),
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_adwin_core",
    .m_doc = "ADWIN's per-value state machine, compiled (see adwin.py for the Python twin).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__adwin_core(void)
{
    if (PyType_Ready(&CoreType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
