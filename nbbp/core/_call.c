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
 * `FastSet` is the same for `Model.set(**floats)`: every keyword a Python float for a
 * float64 scalar leaf is written and the model's kernel run; anything else, or a nan,
 * leaves the arena as it was and says so, and `set`'s Python path does the work with
 * its checks and errors. It also reads the gradients of the leaves into a new dict.
 *
 * The arena is held through the buffer protocol for an object's lifetime, so its
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

/* hold `arena`, a writable float64 buffer, in `view`; its length in values, or -1 */
static Py_ssize_t
hold_arena(PyObject *arena, Py_buffer *view)
{
    if (PyObject_GetBuffer(arena, view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "the arena must be a float64 buffer");
        return -1;
    }
    return view->len / 8;
}

/* call the kernel; `*status` is what it returned (negative: every watched value is
   finite). -1 with an exception set if it raised. */
static int
run_kernel(PyObject *kernel, Py_ssize_t *status)
{
    Py_INCREF(kernel);      /* alive through the call, whatever the call does to us */
    PyObject *r = PyObject_CallNoArgs(kernel);
    Py_DECREF(kernel);
    if (r == NULL)
        return -1;
    *status = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    return *status == -1 && PyErr_Occurred() ? -1 : 0;
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
    Py_ssize_t size = hold_arena(arena, &self->view);
    if (size < 0)
        return NULL;
    self->armed = 1;     /* holds the buffer from here: disarm releases it */
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
    Py_ssize_t status;
    PyObject *res = NULL;
    if (run_kernel(self->kernel, &status) < 0)
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
    if (!self->armed) {     /* only if the kernel's Python disarmed us: nothing to read */
        PyErr_SetString(PyExc_RuntimeError, "the function was changed while it ran");
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

/* ------------------------------------------------------------------ FastSet */

typedef struct {
    PyObject_HEAD
    PyObject *slots;        /* dict: a float64 scalar leaf's name -> its value slot */
    PyObject *names;        /* tuple of str: the leaves whose gradients grads() reads, or NULL */
    Py_ssize_t *grads;      /* their gradient slots */
    PyObject *kernel;       /* as FastCall's */
    PyObject *compiled;     /* .partial becomes False after a run (it computed everything) */
    Py_buffer view;
    Py_ssize_t size;
    Py_ssize_t out;         /* the output's slot, if a float64 scalar; else -1 */
    PyObject *keys;         /* the names of the last call by keyword (a call site's constant
                               tuple), held so its identity is a key; or NULL */
    Py_ssize_t key_slots[MAX_ARGS];             /* and their slots */
} FastSet;

static PyTypeObject *FastSetType;

static int
fs_traverse(FastSet *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->slots);
    Py_VISIT(self->names);
    Py_VISIT(self->kernel);
    Py_VISIT(self->compiled);
    Py_VISIT(self->keys);
    return 0;     /* not view.obj: see fc_traverse */
}

static int
fs_clear(FastSet *self)
{
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    PyMem_Free(self->grads);
    self->grads = NULL;
    Py_CLEAR(self->slots);
    Py_CLEAR(self->names);
    Py_CLEAR(self->kernel);
    Py_CLEAR(self->compiled);
    Py_CLEAR(self->keys);
    return 0;
}

static void
fs_dealloc(FastSet *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    fs_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
fs_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *arena, *slots, *names, *grads, *kernel, *compiled;
    Py_ssize_t out;
    if (!PyArg_ParseTuple(args, "OO!OOOOn:FastSet", &arena, &PyDict_Type, &slots,
                          &names, &grads, &kernel, &compiled, &out))
        return NULL;
    int reads = names != Py_None;       /* else grads() returns None */
    if (reads && !(PyTuple_Check(names) && PyTuple_Check(grads)
                   && PyTuple_GET_SIZE(names) == PyTuple_GET_SIZE(grads))) {
        PyErr_SetString(PyExc_TypeError, "FastSet: names and grads must be tuples of one "
                        "length, or None");
        return NULL;
    }
    Py_ssize_t ng = reads ? PyTuple_GET_SIZE(grads) : 0;
    FastSet *self = (FastSet *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->size = hold_arena(arena, &self->view);
    if (self->size < 0) {
        self->view.obj = NULL;
        Py_DECREF(self);
        return NULL;
    }
    self->slots = PyDict_Copy(slots);
    self->grads = PyMem_New(Py_ssize_t, ng ? ng : 1);
    if (self->slots == NULL || self->grads == NULL) {
        int nomem = self->grads == NULL;
        Py_DECREF(self);
        return nomem ? PyErr_NoMemory() : NULL;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0, i;
    while (PyDict_Next(self->slots, &pos, &key, &value))
        if (slot(value, self->size, &i) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    for (i = 0; i < ng; i++)
        if (slot(PyTuple_GET_ITEM(grads, i), self->size, &self->grads[i]) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    if (out < -1 || out >= self->size) {
        PyErr_Format(PyExc_IndexError, "slot %zd outside the arena (%zd values)", out,
                     self->size);
        Py_DECREF(self);
        return NULL;
    }
    self->out = out;
    self->names = reads ? Py_NewRef(names) : NULL;
    self->kernel = Py_NewRef(kernel);
    self->compiled = Py_NewRef(compiled);
    return (PyObject *)self;
}

/* the slots of the leaves named `keys[k]` (k < n) into `slots`: 1; 0 if a key is not a
   str naming a float64 scalar leaf; -1 on an error */
static int
leaf_slots(FastSet *self, Py_ssize_t n, PyObject *const *keys, Py_ssize_t *slots)
{
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyUnicode_CheckExact(keys[k]))
            return 0;
        PyObject *at = PyDict_GetItemWithError(self->slots, keys[k]);
        if (at == NULL)
            return PyErr_Occurred() ? -1 : 0;
        slots[k] = PyLong_AsSsize_t(at);    /* checked in range when made */
    }
    return 1;
}

/* write `values[k]` to the leaf named `keys[k]` (k < n) and run the kernel: 1 when
   done; 0 when declined -- a key not a str naming a float64 scalar leaf, a value not
   exactly a Python float, a nan or inf in the run -- with the arena as it was; -1 with
   an exception set if the kernel raised. `keys` are distinct (a dict's, a call's);
   `kwnames`, if not NULL, is the tuple holding them (a call's keywords: the same
   tuple at every call from one place in the code, so its slots are looked up once). */
static int
fs_apply(FastSet *self, Py_ssize_t n, PyObject *const *keys, PyObject *const *values,
         PyObject *kwnames)
{
    Py_ssize_t slots[MAX_ARGS];     /* a copy: the kernel's Python may call us again */
    double new[MAX_ARGS], old[MAX_ARGS];
    if (n > MAX_ARGS)
        return 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyFloat_CheckExact(values[k]))
            return 0;
        new[k] = PyFloat_AS_DOUBLE(values[k]);
    }
    if (kwnames != NULL && kwnames == self->keys)
        memcpy(slots, self->key_slots, n * sizeof(Py_ssize_t));
    else {
        int r = leaf_slots(self, n, keys, slots);
        if (r <= 0)
            return r;
        if (kwnames != NULL) {
            Py_XSETREF(self->keys, Py_NewRef(kwnames));
            memcpy(self->key_slots, slots, n * sizeof(Py_ssize_t));
        }
    }
    Py_INCREF(self);        /* the kernel is Python-callable: keep the arena through it */
    double *arena = (double *)self->view.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        old[k] = arena[slots[k]];
        arena[slots[k]] = new[k];
    }
    Py_ssize_t status;
    int res = -1;
    if (run_kernel(self->kernel, &status) < 0)
        goto done;
    if (status >= 0) {     /* undo in reverse (a name twice is impossible) */
        for (Py_ssize_t k = n - 1; k >= 0; k--)
            arena[slots[k]] = old[k];
        res = 0;
        goto done;
    }
    PyObject *p = PyObject_GetAttr(self->compiled, str_partial);   /* it ran everything */
    if (p == NULL)
        goto done;
    res = p == Py_False || PyObject_SetAttr(self->compiled, str_partial, Py_False) == 0 ? 1 : -1;
    Py_DECREF(p);
done:
    Py_DECREF(self);
    return res;
}

PyDoc_STRVAR(fs_set_doc,
"set(values: dict) -> bool\n--\n\n"
"If every value is a Python float for a float64 scalar leaf, write them, run the\n"
"kernel and return True. Otherwise -- another type, another name, a nan or inf in\n"
"the run -- leave the leaves as they were and return False.");

/* fs_apply for a dict's items */
static int
fs_apply_dict(FastSet *self, PyObject *values)
{
    PyObject *keys[MAX_ARGS], *vals[MAX_ARGS];
    if (!PyDict_CheckExact(values) || PyDict_GET_SIZE(values) > MAX_ARGS)
        return 0;
    Py_ssize_t pos = 0, n = 0;
    while (PyDict_Next(values, &pos, &keys[n], &vals[n]))   /* borrowed: no code runs */
        n++;                                                /* until fs_apply has read them */
    return fs_apply(self, n, keys, vals, NULL);
}

static PyObject *
fs_set(FastSet *self, PyObject *values)
{
    int r = fs_apply_dict(self, values);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

PyDoc_STRVAR(fs_grads_doc,
"grads() -> dict | None\n--\n\n"
"The gradients of the leaves named when made, by name, as new Python floats (None if\n"
"it was made without names: some gradient is not a float64 scalar).");

static PyObject *
fs_grads(FastSet *self, PyObject *unused)
{
    if (self->names == NULL)
        Py_RETURN_NONE;
    Py_ssize_t ng = PyTuple_GET_SIZE(self->names);
    PyObject *res = PyDict_New();
    double *arena = (double *)self->view.buf;
    for (Py_ssize_t i = 0; res != NULL && i < ng; i++) {
        PyObject *g = PyFloat_FromDouble(arena[self->grads[i]]);
        if (g == NULL || PyDict_SetItem(res, PyTuple_GET_ITEM(self->names, i), g) < 0)
            Py_CLEAR(res);
        Py_XDECREF(g);
    }
    return res;
}

static PyMethodDef fs_methods[] = {
    {"set", (PyCFunction)fs_set, METH_O, fs_set_doc},
    {"grads", (PyCFunction)fs_grads, METH_NOARGS, fs_grads_doc},
    {NULL}
};

PyDoc_STRVAR(fs_doc,
"FastSet(arena, slots, names, grads, kernel, compiled, out)\n--\n\n"
"Model.set's common case and Model.grads in C: ``slots`` maps each float64 scalar\n"
"leaf's name to its value slot in ``arena``; ``names`` and ``grads`` are the leaves\n"
"whose gradients grads() reads and their slots; ``kernel`` runs the model's program;\n"
"``compiled.partial`` is set False after a run; ``out`` is the output's slot if it is\n"
"a float64 scalar, else -1.");

static PyType_Slot fs_slots[] = {
    {Py_tp_doc, (void *)fs_doc},
    {Py_tp_new, fs_new},
    {Py_tp_dealloc, fs_dealloc},
    {Py_tp_traverse, fs_traverse},
    {Py_tp_clear, fs_clear},
    {Py_tp_methods, fs_methods},
    {0, NULL}
};

static PyType_Spec fs_spec = {
    .name = "nbbp.core._call.FastSet",
    .basicsize = sizeof(FastSet),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = fs_slots,
};

/* ---------------------------------------------------------------- ModelBase */

/* The base of nbbp.model.Model: `set`, `value` and `grads` in C once the model has
   its FastSet (`_fast`, made by the subclass's `_armed()` on the first `set` or
   `grads`); until then, and for everything the FastSet declines, the subclass's
   `_set`, `_value` and `_grads` do the work with every check and error. */
typedef struct {
    PyObject_HEAD
    FastSet *fast;          /* or NULL */
} ModelBase;

static PyObject *str__set, *str__value, *str__grads, *str__armed;

static int
mb_traverse(ModelBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fast);
    return 0;
}

static int
mb_clear(ModelBase *self)
{
    Py_CLEAR(self->fast);
    return 0;
}

static void
mb_dealloc(ModelBase *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    mb_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(mb_set_doc,
"set($self, values=None, /, **kw)\n--\n\n"
"Give leaves new values, then recompute values and gradients.\n\n"
"Keyword names or a dict (needed for scoped names like ``\"hidden/W1\"``). If the new\n"
"values produce a nan or inf, the old values are restored and a NumericError names\n"
"the node. Returns the model.");

static PyObject *
mb_set(ModelBase *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs <= 1 && (nargs == 0) != (kwnames == NULL)) {     /* set(d) or set(x=..) */
        if (self->fast == NULL) {       /* the first one: the model makes its slot table */
            PyObject *made = PyObject_CallMethodNoArgs((PyObject *)self, str__armed);
            if (made == NULL)
                return NULL;
            Py_DECREF(made);
        }
        FastSet *fs = self->fast;
        int r = fs == NULL ? 0
              : nargs ? fs_apply_dict(fs, args[0])
                      : fs_apply(fs, PyTuple_GET_SIZE(kwnames), &PyTuple_GET_ITEM(kwnames, 0),
                                 args, kwnames);
        if (r < 0)
            return NULL;
        if (r)
            return Py_NewRef(self);
    }
    if (nargs > 1)
        return PyErr_Format(PyExc_TypeError, "set() takes at most one positional argument "
                            "(a dict of values), %zd given", nargs);
    PyObject *fn = PyObject_GetAttr((PyObject *)self, str__set);
    if (fn == NULL)
        return NULL;
    PyObject *res = PyObject_Vectorcall(fn, args, nargs, kwnames);
    Py_DECREF(fn);
    return res;
}

static PyObject *
mb_value(ModelBase *self, void *closure)
{
    FastSet *fs = self->fast;
    if (fs != NULL && fs->out >= 0)
        return PyFloat_FromDouble(((double *)fs->view.buf)[fs->out]);
    return PyObject_CallMethodNoArgs((PyObject *)self, str__value);
}

static PyObject *
mb_grads(ModelBase *self, void *closure)
{
    FastSet *fs = self->fast;
    if (fs != NULL && fs->names != NULL) {
        Py_INCREF(fs);          /* held: reading an attribute may run Python code */
        PyObject *p = PyObject_GetAttr(fs->compiled, str_partial), *res = NULL;
        int partial = p == NULL ? -1 : PyObject_IsTrue(p);
        Py_XDECREF(p);
        if (partial == 0)       /* every gradient computed, each a float64 scalar */
            res = fs_grads(fs, NULL);
        Py_DECREF(fs);
        if (partial <= 0)
            return res;
    }
    return PyObject_CallMethodNoArgs((PyObject *)self, str__grads);
}

static PyObject *
mb_get_fast(ModelBase *self, void *closure)
{
    return Py_NewRef(self->fast != NULL ? (PyObject *)self->fast : Py_None);
}

static int
mb_set_fast(ModelBase *self, PyObject *value, void *closure)
{
    if (value != NULL && value != Py_None && !PyObject_TypeCheck(value, FastSetType)) {
        PyErr_SetString(PyExc_TypeError, "_fast must be a FastSet or None");
        return -1;
    }
    Py_XSETREF(self->fast, value == NULL || value == Py_None ? NULL
                                                             : (FastSet *)Py_NewRef(value));
    return 0;
}

static PyMethodDef mb_methods[] = {
    {"set", (PyCFunction)(void (*)(void))mb_set, METH_FASTCALL | METH_KEYWORDS, mb_set_doc},
    {NULL}
};

static PyGetSetDef mb_getset[] = {
    {"value", (getter)mb_value, NULL, "The output's value.", NULL},
    {"grads", (getter)mb_grads, NULL, "∂output/∂leaf for every param and input, by name.",
     NULL},
    {"_fast", (getter)mb_get_fast, (setter)mb_set_fast,
     "the FastSet taking set, value and grads in C, or None", NULL},
    {NULL}
};

PyDoc_STRVAR(mb_doc,
"The base of nbbp.model.Model: set(**floats), value and grads in C once ``_fast``\n"
"is set; otherwise, and for whatever it declines, the subclass's ``_set``, ``_value``\n"
"and ``_grads``.");

static PyType_Slot mb_slots[] = {
    {Py_tp_doc, (void *)mb_doc},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, mb_dealloc},
    {Py_tp_traverse, mb_traverse},
    {Py_tp_clear, mb_clear},
    {Py_tp_methods, mb_methods},
    {Py_tp_getset, mb_getset},
    {0, NULL}
};

static PyType_Spec mb_spec = {
    .name = "nbbp.core._call.ModelBase",
    .basicsize = sizeof(ModelBase),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = mb_slots,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nbbp.core._call",
    "A model's common calls in C: FastCall (m.function), FastSet and ModelBase (m.set,\n"
    "m.value, m.grads).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__call(void)
{
    str_generic = PyUnicode_InternFromString("_generic");
    str_nan = PyUnicode_InternFromString("_nan");
    str_partial = PyUnicode_InternFromString("partial");
    str__set = PyUnicode_InternFromString("_set");
    str__value = PyUnicode_InternFromString("_value");
    str__grads = PyUnicode_InternFromString("_grads");
    str__armed = PyUnicode_InternFromString("_armed");
    if (!str_generic || !str_nan || !str_partial || !str__set || !str__value || !str__grads
        || !str__armed)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *tp = PyType_FromSpec(&fc_spec);
    if (tp == NULL || PyModule_AddObject(m, "FastCall", tp) < 0)
        goto fail;
    tp = PyType_FromSpec(&fs_spec);
    FastSetType = (PyTypeObject *)tp;       /* the module keeps it for good */
    if (tp == NULL || PyModule_AddObject(m, "FastSet", tp) < 0)
        goto fail;
    tp = PyType_FromSpec(&mb_spec);
    if (tp == NULL || PyModule_AddObject(m, "ModelBase", tp) < 0)
        goto fail;
    return m;
fail:
    Py_XDECREF(tp);
    Py_DECREF(m);
    return NULL;
}
