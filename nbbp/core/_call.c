/* nbbp.core._call: the common call of a model's function, in C.
 *
 * `m.function(...)` returns a `nbbp.model.Function`, a subclass of `FastCall`. Once
 * armed (`_arm`), calling it with every argument a Python float -- by position, or
 * every one by name -- is done here: one exact type check and one write into the
 * model's float64 arena per argument, the compiled kernel called once, and the value
 * and gradients read back as new Python floats. Nothing of the Python interpreter runs
 * between the call and the kernel but the kernel's own entry, so the whole call costs
 * about what calling the kernel does (see docs/benchmarks.md).
 *
 * Every other call -- other types (ints, NumPy scalars, arrays, strings, bools), a
 * wrong count, unknown or repeated names, a function that is not armed -- goes to the
 * subclass's `_generic(*args, **kwargs)`, which has `Model.set`'s checks and errors.
 * A run that meets a nan or inf calls `_nan(old)` with the arguments' previous values,
 * which restores them and raises nbbp's NumericError naming the node.
 *
 * The arena is held through the buffer protocol for the object's lifetime, so its
 * memory cannot move or be freed under us.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_ARGS 64   /* more arguments than this: the generic call */

typedef struct {
    PyObject_HEAD
    int armed;
    int single;             /* one gradient, returned bare, not in a tuple */
    Py_ssize_t n;           /* arguments */
    Py_ssize_t ng;          /* gradients read */
    Py_ssize_t out;         /* the output's slot */
    Py_ssize_t offs[MAX_ARGS];
    Py_ssize_t *grads;      /* ng slots */
    PyObject *names;        /* tuple of n str: the arguments by name */
    PyObject *kernel;       /* no-argument callable: runs the program, returns an int */
    PyObject *partial;      /* an object whose .partial becomes True after a run, or NULL */
    Py_buffer view;         /* the float64 arena */
} FastCall;

static PyObject *str_generic, *str_nan, *str_partial;

static void
disarm(FastCall *self)
{
    if (self->armed) {
        PyBuffer_Release(&self->view);
        self->armed = 0;
    }
    PyMem_Free(self->grads);
    self->grads = NULL;
    Py_CLEAR(self->names);
    Py_CLEAR(self->kernel);
    Py_CLEAR(self->partial);
}

static int
fc_traverse(FastCall *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->names);
    Py_VISIT(self->kernel);
    Py_VISIT(self->partial);
    /* not view.obj: the collector must not clear a buffer's owner (a memoryview
       refuses to be cleared while exported) before we release it; the arena holds
       no reference back to us, so it is never part of a cycle through us */
    return 0;
}

static int
fc_clear(FastCall *self)
{
    disarm(self);
    return 0;
}

static void
fc_dealloc(FastCall *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    disarm(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);   /* heap types: instances hold a reference to their type */
}

/* a slot index from a Python int, checked against the arena's length */
static int
slot(PyObject *o, Py_ssize_t size, Py_ssize_t *res)
{
    Py_ssize_t i = PyNumber_AsSsize_t(o, PyExc_OverflowError);
    if (i == -1 && PyErr_Occurred())
        return -1;
    if (i < 0 || i >= size) {
        PyErr_Format(PyExc_IndexError, "slot %zd outside the arena (%zd values)", i, size);
        return -1;
    }
    *res = i;
    return 0;
}

PyDoc_STRVAR(arm_doc,
"_arm(arena, offsets, names, out, grads, single, kernel, partial)\n--\n\n"
"Take the common call from now on: ``arena`` a writable float64 buffer (the model's\n"
"arena), ``offsets`` the arguments' slots and ``names`` their names, ``out`` the\n"
"output's slot, ``grads`` the gradients' slots (``single``: return the one gradient\n"
"bare), ``kernel`` a no-argument callable running the program and returning a\n"
"negative int when every watched value is finite, ``partial`` None or an object whose\n"
"``partial`` attribute is set True after each run (a pruned program).");

static PyObject *
fc_arm(FastCall *self, PyObject *args)
{
    PyObject *arena, *offs, *names, *grads, *kernel, *partial;
    Py_ssize_t out;
    int single;
    if (!PyArg_ParseTuple(args, "OO!O!nO!pOO:_arm", &arena, &PyTuple_Type, &offs,
                          &PyTuple_Type, &names, &out, &PyTuple_Type, &grads, &single,
                          &kernel, &partial))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(offs), ng = PyTuple_GET_SIZE(grads);
    if (n != PyTuple_GET_SIZE(names) || n > MAX_ARGS || ng == 0 || (single && ng != 1)) {
        PyErr_SetString(PyExc_ValueError, "_arm: offsets and names differ in length, "
                        "too many arguments, or no gradient");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(names, i))) {
            PyErr_SetString(PyExc_TypeError, "_arm: names must be str");
            return NULL;
        }
    if (!PyCallable_Check(kernel)) {
        PyErr_SetString(PyExc_TypeError, "_arm: kernel must be callable");
        return NULL;
    }
    disarm(self);
    if (PyObject_GetBuffer(arena, &self->view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    self->armed = 1;     /* holds the buffer from here: disarm releases it */
    if (self->view.itemsize != 8 || self->view.format == NULL
            || strcmp(self->view.format, "d") != 0) {
        disarm(self);
        PyErr_SetString(PyExc_TypeError, "_arm: the arena must be a float64 buffer");
        return NULL;
    }
    Py_ssize_t size = self->view.len / 8;
    self->grads = PyMem_New(Py_ssize_t, ng);
    if (self->grads == NULL) {
        disarm(self);
        return PyErr_NoMemory();
    }
    if (out < 0 || out >= size) {
        disarm(self);
        PyErr_Format(PyExc_IndexError, "slot %zd outside the arena (%zd values)", out, size);
        return NULL;
    }
    self->out = out;
    for (Py_ssize_t i = 0; i < n; i++)
        if (slot(PyTuple_GET_ITEM(offs, i), size, &self->offs[i]) < 0) {
            disarm(self);
            return NULL;
        }
    for (Py_ssize_t i = 0; i < ng; i++)
        if (slot(PyTuple_GET_ITEM(grads, i), size, &self->grads[i]) < 0) {
            disarm(self);
            return NULL;
        }
    self->n = n;
    self->ng = ng;
    self->single = single;
    self->names = Py_NewRef(names);
    self->kernel = Py_NewRef(kernel);
    self->partial = partial == Py_None ? NULL : Py_NewRef(partial);
    Py_RETURN_NONE;
}

static PyObject *
generic(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fn = PyObject_GetAttr(self, str_generic);
    if (fn == NULL)
        return NULL;
    PyObject *res = PyObject_Call(fn, args, kwargs);
    Py_DECREF(fn);
    return res;
}

static PyObject *
fc_call(FastCall *self, PyObject *args, PyObject *kwargs)
{
    double new[MAX_ARGS], old[MAX_ARGS];
    Py_ssize_t n = self->n, nargs = PyTuple_GET_SIZE(args);
    if (!self->armed)
        return generic((PyObject *)self, args, kwargs);
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {     /* every argument by name */
        if (nargs || PyDict_GET_SIZE(kwargs) != n)
            return generic((PyObject *)self, args, kwargs);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = PyDict_GetItemWithError(kwargs, PyTuple_GET_ITEM(self->names, i));
            if (v == NULL) {
                if (PyErr_Occurred())
                    return NULL;
                return generic((PyObject *)self, args, kwargs);
            }
            if (!PyFloat_CheckExact(v))
                return generic((PyObject *)self, args, kwargs);
            new[i] = PyFloat_AS_DOUBLE(v);
        }
    }
    else {                                                  /* every argument by position */
        if (nargs != n)
            return generic((PyObject *)self, args, kwargs);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = PyTuple_GET_ITEM(args, i);
            if (!PyFloat_CheckExact(v))
                return generic((PyObject *)self, args, kwargs);
            new[i] = PyFloat_AS_DOUBLE(v);
        }
    }
    double *arena = (double *)self->view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        old[i] = arena[self->offs[i]];
        arena[self->offs[i]] = new[i];
    }
    Py_INCREF(self);    /* the kernel is Python-callable: keep ourselves alive through it */
    PyObject *r = PyObject_CallNoArgs(self->kernel);
    PyObject *res = NULL;
    if (r == NULL)
        goto done;
    Py_ssize_t status = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    if (status == -1 && PyErr_Occurred())
        goto done;
    if (status >= 0) {   /* a nan or inf: the Python side names it and restores `old` */
        PyObject *prev = PyTuple_New(n);
        if (prev == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *f = PyFloat_FromDouble(old[i]);
            if (f == NULL) {
                Py_DECREF(prev);
                goto done;
            }
            PyTuple_SET_ITEM(prev, i, f);
        }
        res = PyObject_CallMethodOneArg((PyObject *)self, str_nan, prev);
        Py_DECREF(prev);
        goto done;
    }
    if (self->partial != NULL && PyObject_SetAttr(self->partial, str_partial, Py_True) < 0)
        goto done;
    arena = (double *)self->view.buf;
    PyObject *value = PyFloat_FromDouble(arena[self->out]), *grads;
    if (value == NULL)
        goto done;
    if (self->single)
        grads = PyFloat_FromDouble(arena[self->grads[0]]);
    else {
        grads = PyTuple_New(self->ng);
        for (Py_ssize_t i = 0; grads != NULL && i < self->ng; i++) {
            PyObject *g = PyFloat_FromDouble(arena[self->grads[i]]);
            if (g == NULL)
                Py_CLEAR(grads);
            else
                PyTuple_SET_ITEM(grads, i, g);
        }
    }
    if (grads == NULL) {
        Py_DECREF(value);
        goto done;
    }
    res = PyTuple_New(2);
    if (res == NULL) {
        Py_DECREF(value);
        Py_DECREF(grads);
        goto done;
    }
    PyTuple_SET_ITEM(res, 0, value);
    PyTuple_SET_ITEM(res, 1, grads);
done:
    Py_DECREF(self);
    return res;
}

static PyObject *
fc_armed(FastCall *self, void *closure)
{
    return PyBool_FromLong(self->armed);
}

static PyMethodDef fc_methods[] = {
    {"_arm", (PyCFunction)fc_arm, METH_VARARGS, arm_doc},
    {NULL}
};

static PyGetSetDef fc_getset[] = {
    {"_armed", (getter)fc_armed, NULL, "whether the common call is taken in C", NULL},
    {NULL}
};

PyDoc_STRVAR(fc_doc,
"The base of nbbp.model.Function: the common call -- every argument a Python float,\n"
"by position or every one by name -- done in C once armed; every other call goes to\n"
"the subclass's ``_generic``.");

static PyType_Slot fc_slots[] = {
    {Py_tp_doc, (void *)fc_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, fc_dealloc},
    {Py_tp_traverse, fc_traverse},
    {Py_tp_clear, fc_clear},
    {Py_tp_call, fc_call},
    {Py_tp_methods, fc_methods},
    {Py_tp_getset, fc_getset},
    {0, NULL}
};

static PyType_Spec fc_spec = {
    .name = "nbbp.core._call.FastCall",
    .basicsize = sizeof(FastCall),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = fc_slots,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nbbp.core._call",
    "The common call of a model's function, in C (see FastCall).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__call(void)
{
    str_generic = PyUnicode_InternFromString("_generic");
    str_nan = PyUnicode_InternFromString("_nan");
    str_partial = PyUnicode_InternFromString("partial");
    if (!str_generic || !str_nan || !str_partial)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *tp = PyType_FromSpec(&fc_spec);
    if (tp == NULL || PyModule_AddObject(m, "FastCall", tp) < 0) {
        Py_XDECREF(tp);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
