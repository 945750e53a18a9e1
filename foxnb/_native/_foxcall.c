/* One generic vectorcall type calling foxnb AOT functions through their packed entry point
 *   int32_t fn(int64_t *slots, void *result, void **excinfo)
 * Built once per Python ABI + numpy version; every library is reached with dlopen/dlsym. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <float.h>
#include <math.h>

#define MAX_NDIM 8
#define MAX_SLOTS 512   /* 8-byte argument slots: 1 per scalar (complex128 2), 1 + ndim per
                           C-contiguous array, 1 + 2 ndim per strided one */
#define MAX_RESULT 4096 /* bytes of a result: a scalar, a foxnb_array or a tuple's struct */
#define MAX_ITEMS 64

typedef int32_t (*packed_fn)(int64_t *slots, void *result, void **excinfo);
typedef void (*release_fn)(void *meminfo);

typedef struct {
    void *meminfo;
    void *data;
    int64_t ndim;
    int64_t shape[MAX_NDIM];
    int64_t strides[MAX_NDIM];
} foxnb_array;

/* strided: the array's byte strides follow its shape in the slots; readonly: the function
   never writes the argument, read-only arrays are fine; offset: of a tuple item */
typedef struct { int typenum; int ndim; int strided; int readonly; Py_ssize_t offset; } valspec;
#define TUPLE_TYPENUM (-2)

/* ---- Library: a dlopen handle ---- */
typedef struct { PyObject_HEAD void *handle; PyObject *path; } Library;

static void Library_dealloc(Library *self) {
    if (self->handle) dlclose(self->handle);
    Py_XDECREF(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Library_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *path;
    (void)kw;
    if (!PyArg_ParseTuple(args, "U:Library", &path)) return NULL;
    const char *cpath = PyUnicode_AsUTF8(path);
    if (!cpath) return NULL;
    void *h = dlopen(cpath, RTLD_NOW | RTLD_LOCAL);
    if (!h) { PyErr_Format(PyExc_OSError, "cannot load %U: %s", path, dlerror()); return NULL; }
    Library *self = (Library *)type->tp_alloc(type, 0);
    if (!self) { dlclose(h); return NULL; }
    self->handle = h;
    Py_INCREF(path);
    self->path = path;
    return (PyObject *)self;
}

static PyObject *Library_address(Library *self, PyObject *name) {
    const char *cname = PyUnicode_AsUTF8(name);
    if (!cname) return NULL;
    void *p = dlsym(self->handle, cname);
    if (!p) { PyErr_Format(PyExc_AttributeError, "%U has no symbol %U", self->path, name); return NULL; }
    return PyLong_FromVoidPtr(p);
}

static PyMethodDef Library_methods[] = {
    {"address", (PyCFunction)Library_address, METH_O, "Address of an exported symbol."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef Library_members[] = {
    {"path", T_OBJECT, offsetof(Library, path), READONLY, "Path of the shared library."},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject LibraryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "foxnb._native._foxcall.Library",
    .tp_basicsize = sizeof(Library),
    .tp_dealloc = (destructor)Library_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Library(path): a shared library opened with dlopen(RTLD_NOW | RTLD_LOCAL).",
    .tp_methods = Library_methods,
    .tp_members = Library_members,
    .tp_new = Library_new,
};

/* ---- Owner: base object of returned arrays, drops the library's reference on death ---- */
typedef struct { PyObject_HEAD void *meminfo; release_fn release; PyObject *keep; } Owner;

static void Owner_dealloc(Owner *self) {
    if (self->meminfo) self->release(self->meminfo);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OwnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "foxnb._native._foxcall.Owner",
    .tp_basicsize = sizeof(Owner),
    .tp_dealloc = (destructor)Owner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Owns memory allocated by a foxnb library.",
};

/* ---- Function ---- */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *target;  /* redirect(): calls go there instead (NULL: the native code) */
    packed_fn fn;
    release_fn release;
    Py_ssize_t nargs;
    int nogil; /* release the GIL around the call (the kernel touches no Python object) */
    valspec args[MAX_SLOTS];
    valspec result;
    Py_ssize_t nitems;  /* items of a tuple result */
    valspec items[MAX_ITEMS];
    PyObject *library, *name, *signature, *expected, *arg_names, *on_error;
} Function;

static PyObject *describe(PyObject *obj) {
    if (!PyArray_Check(obj)) return PyUnicode_FromString(Py_TYPE(obj)->tp_name);
    PyArrayObject *a = (PyArrayObject *)obj;
    PyObject *dt = PyObject_Str((PyObject *)PyArray_DESCR(a));
    if (!dt) return NULL;
    const char *layout = PyArray_IS_C_CONTIGUOUS(a) ? ""
                         : PyArray_IS_F_CONTIGUOUS(a) ? "Fortran-ordered " : "non-contiguous ";
    PyObject *s = PyUnicode_FromFormat(
        "%s%s%s%s%U array of %d dimension%s", layout,
        PyArray_ISWRITEABLE(a) ? "" : "read-only ", PyArray_ISALIGNED(a) ? "" : "unaligned ",
        PyArray_ISNOTSWAPPED(a) ? "" : "byte-swapped ", dt, PyArray_NDIM(a),
        PyArray_NDIM(a) == 1 ? "" : "s");
    Py_DECREF(dt);
    return s;
}

static PyObject *bad_argument(Function *f, Py_ssize_t i, PyObject *obj) {
    PyErr_Clear();
    PyObject *got = describe(obj);
    if (!got) return NULL;
    PyErr_Format(PyExc_TypeError, "%U: argument %zd '%U' must be %U, got %U", f->signature, i + 1,
                 PyTuple_GET_ITEM(f->arg_names, i), PyTuple_GET_ITEM(f->expected, i), got);
    Py_DECREF(got);
    return NULL;
}

static PyObject *out_of_range(Function *f, Py_ssize_t i, PyObject *obj) {
    PyErr_Clear();
    PyErr_Format(PyExc_OverflowError, "%U: argument %zd '%U' must be %U, got %R (out of range)",
                 f->signature, i + 1, PyTuple_GET_ITEM(f->arg_names, i),
                 PyTuple_GET_ITEM(f->expected, i), obj);
    return NULL;
}

static int to_integer(PyObject *obj, long long lo, long long hi, long long *out) {
    if (PyFloat_Check(obj) || PyBool_Check(obj)) return -1;
    long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Bytes from data to the lowest (*first <= 0) and past the highest element of an array. */
static void extent(int ndim, npy_intp *dims, npy_intp *strides, npy_intp *first,
                   npy_intp *last) {
    *first = *last = 0;
    for (int d = 0; d < ndim; d++) {
        npy_intp span = (dims[d] - 1) * strides[d];
        if (span < 0) *first += span; else *last += span;
    }
}

/* Whether the array (r, dims, strides, data) lies inside the memory of argument a. */
static int within(PyArrayObject *a, valspec r, npy_intp *dims, npy_intp *strides, char *data) {
    npy_intp alo, ahi, first, last, itemsize = PyArray_ITEMSIZE(a);
    char *base = PyArray_BYTES(a);
    if (PyArray_SIZE(a) == 0) return data == base;
    for (int d = 0; d < r.ndim; d++)
        if (dims[d] == 0) return data == base;  /* empty: only a view at the very start */
    extent(PyArray_NDIM(a), PyArray_DIMS(a), PyArray_STRIDES(a), &alo, &ahi);
    extent(r.ndim, dims, strides, &first, &last);
    return data + first >= base + alo && data + last + itemsize <= base + ahi + itemsize;
}

/* The argument itself when the result is exactly it (numba returns the object passed in), else
   a view on it: the result shares the argument's memory as it does in numba and Python. */
static PyObject *argument_view(PyObject *arg, valspec r, npy_intp *dims, npy_intp *strides,
                               char *data) {
    PyArrayObject *a = (PyArrayObject *)arg;
    int same = PyArray_BYTES(a) == data && PyArray_NDIM(a) == r.ndim &&
               PyArray_EquivTypenums(PyArray_TYPE(a), r.typenum);
    for (int d = 0; same && d < r.ndim; d++)
        same = PyArray_DIMS(a)[d] == dims[d] && PyArray_STRIDES(a)[d] == strides[d];
    if (same) return Py_NewRef(arg);
    PyArray_Descr *descr = PyArray_DescrFromType(r.typenum);
    if (!descr) return NULL;
    PyObject *view = PyArray_NewFromDescr(&PyArray_Type, descr, r.ndim, dims, strides, data,
                                          PyArray_FLAGS(a) & NPY_ARRAY_WRITEABLE, NULL);
    if (!view) return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)view, Py_NewRef(arg)) < 0) {
        Py_DECREF(view);
        return NULL;
    }
    PyArray_UpdateFlags((PyArrayObject *)view, NPY_ARRAY_UPDATE_ALL);
    return view;
}

/* Python's own wording for a call that does not match the parameters, e.g.
   "f() got an unexpected keyword argument 'm'"; kwnames may be NULL (no keywords). */
static PyObject *bind_keywords(Function *f, PyObject *const *argv, Py_ssize_t n,
                               PyObject *kwnames, PyObject **out) {
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (n > f->nargs) {
        PyErr_Format(PyExc_TypeError, "%U() takes %zd positional argument%s but %zd %s given",
                     f->name, f->nargs, f->nargs == 1 ? "" : "s", n, n == 1 ? "was" : "were");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < f->nargs; i++) out[i] = i < n ? argv[i] : NULL;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        Py_ssize_t i = 0;
        for (; i < f->nargs; i++) {
            PyObject *name = PyTuple_GET_ITEM(f->arg_names, i);
            if (name == key) break;
            int eq = PyUnicode_Compare(name, key);
            if (eq == -1 && PyErr_Occurred()) return NULL;
            if (eq == 0) break;
        }
        if (i == f->nargs) {
            PyErr_Format(PyExc_TypeError, "%U() got an unexpected keyword argument '%U'",
                         f->name, key);
            return NULL;
        }
        if (out[i]) {
            PyErr_Format(PyExc_TypeError, "%U() got multiple values for argument '%U'",
                         f->name, key);
            return NULL;
        }
        out[i] = argv[n + j];
    }
    Py_ssize_t missing = 0;
    for (Py_ssize_t i = 0; i < f->nargs; i++) missing += out[i] == NULL;
    if (!missing) return Py_None;  /* borrowed: success */
    PyObject *names = PyList_New(0);
    if (!names) return NULL;
    for (Py_ssize_t i = 0; i < f->nargs; i++) {
        if (out[i]) continue;
        PyObject *q = PyUnicode_FromFormat("'%U'", PyTuple_GET_ITEM(f->arg_names, i));
        if (!q || PyList_Append(names, q) < 0) { Py_XDECREF(q); Py_DECREF(names); return NULL; }
        Py_DECREF(q);
    }
    /* 'x', 'y' and 'z' */
    PyObject *last = PyList_GET_ITEM(names, missing - 1), *text;
    if (missing == 1) text = Py_NewRef(last);
    else {
        PyObject *sep = PyUnicode_FromString(", ");
        PyObject *head = PyList_GetSlice(names, 0, missing - 1);
        PyObject *joined = sep && head ? PyUnicode_Join(sep, head) : NULL;
        text = joined ? PyUnicode_FromFormat("%U and %U", joined, last) : NULL;
        Py_XDECREF(sep); Py_XDECREF(head); Py_XDECREF(joined);
    }
    if (text)
        PyErr_Format(PyExc_TypeError, "%U() missing %zd required positional argument%s: %U",
                     f->name, missing, missing == 1 ? "" : "s", text);
    Py_XDECREF(text);
    Py_DECREF(names);
    return NULL;
}

/* A returned array: the memory it owns, an argument (or a view of one), or a constant. */
static PyObject *array_result(Function *f, PyObject *const *argv, Py_ssize_t n, valspec r,
                              foxnb_array *a) {
    npy_intp dims[MAX_NDIM], strides[MAX_NDIM];
    for (int d = 0; d < r.ndim; d++) { dims[d] = a->shape[d]; strides[d] = a->strides[d]; }
    if (!a->meminfo) {  /* no allocation of its own: an argument, a view of one, or a constant */
        for (Py_ssize_t i = 0; i < n; i++)
            if (f->args[i].ndim && within((PyArrayObject *)argv[i], r, dims, strides, a->data))
                return argument_view(argv[i], r, dims, strides, a->data);
        /* memory compiled into the library (a global array): a copy that owns its data */
        PyObject *arr = PyArray_New(&PyArray_Type, r.ndim, dims, r.typenum, strides,
                                    a->data, 0, NPY_ARRAY_ALIGNED, NULL);
        if (!arr) return NULL;
        PyObject *copy = PyArray_NewCopy((PyArrayObject *)arr, NPY_KEEPORDER);
        Py_DECREF(arr);
        return copy;
    }
    void *meminfo = a->meminfo;
    a->meminfo = NULL;  /* from here on the returned object (or this function) releases it */
    PyObject *arr = PyArray_New(&PyArray_Type, r.ndim, dims, r.typenum, strides, a->data, 0,
                                NPY_ARRAY_WRITEABLE | NPY_ARRAY_ALIGNED, NULL);
    if (!arr) { f->release(meminfo); return NULL; }
    Owner *owner = PyObject_New(Owner, &OwnerType);
    if (!owner) { Py_DECREF(arr); f->release(meminfo); return NULL; }
    owner->meminfo = meminfo;
    owner->release = f->release;
    owner->keep = Py_NewRef(f->library);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)owner) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    PyArray_UpdateFlags((PyArrayObject *)arr, NPY_ARRAY_UPDATE_ALL);
    return arr;
}

static PyObject *scalar_result(int typenum, const char *p) {
#define AS(T) (*(const T *)(const void *)p)
    switch (typenum) {
    case -1: Py_RETURN_NONE;
    case NPY_DOUBLE: return PyFloat_FromDouble(AS(double));
    case NPY_FLOAT: return PyFloat_FromDouble(AS(float));
    case NPY_CDOUBLE: return PyComplex_FromDoubles(AS(double), ((const double *)p)[1]);
    case NPY_CFLOAT: return PyComplex_FromDoubles(AS(float), ((const float *)p)[1]);
    case NPY_INT64: return PyLong_FromLongLong(AS(int64_t));
    case NPY_INT32: return PyLong_FromLong(AS(int32_t));
    case NPY_INT16: return PyLong_FromLong(AS(int16_t));
    case NPY_INT8: return PyLong_FromLong(AS(int8_t));
    case NPY_UINT64: return PyLong_FromUnsignedLongLong(AS(uint64_t));
    case NPY_UINT32: return PyLong_FromUnsignedLong(AS(uint32_t));
    case NPY_UINT16: return PyLong_FromLong(AS(uint16_t));
    case NPY_UINT8: return PyLong_FromLong(AS(uint8_t));
    case NPY_BOOL: return PyBool_FromLong(AS(uint8_t));
    }
#undef AS
    PyErr_SetString(PyExc_SystemError, "foxnb: bad result spec");
    return NULL;
}

static PyObject *tuple_result(Function *f, PyObject *const *argv, Py_ssize_t n, char *res) {
    PyObject *tuple = PyTuple_New(f->nitems);
    Py_ssize_t k = 0;
    for (; tuple && k < f->nitems; k++) {
        valspec it = f->items[k];
        PyObject *item = it.ndim ? array_result(f, argv, n, it, (foxnb_array *)(res + it.offset))
                                 : scalar_result(it.typenum, res + it.offset);
        if (!item) { Py_CLEAR(tuple); break; }
        PyTuple_SET_ITEM(tuple, k, item);
    }
    if (!tuple)  /* arrays not yet handed to Python objects still hold their memory */
        for (; k < f->nitems; k++) {
            foxnb_array *a = (foxnb_array *)(res + f->items[k].offset);
            if (f->items[k].ndim && a->meminfo) f->release(a->meminfo);
        }
    return tuple;
}

static PyObject *Function_vectorcall(PyObject *self_, PyObject *const *argv, size_t nargsf,
                                     PyObject *kwnames) {
    Function *f = (Function *)self_;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    PyObject *bound[MAX_SLOTS];
    if (kwnames && PyTuple_GET_SIZE(kwnames)) {
        if (!bind_keywords(f, argv, n, kwnames, bound)) return NULL;
        argv = bound;
        n = f->nargs;
    }
    if (n != f->nargs) {  /* Python's own message: "f() missing 1 required positional ..." */
        bind_keywords(f, argv, n, NULL, bound);
        return NULL;
    }
    int64_t slots[MAX_SLOTS];
    int k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = argv[i];
        valspec s = f->args[i];
        if (s.ndim) {
            if (!PyArray_Check(obj)) return bad_argument(f, i, obj);
            PyArrayObject *a = (PyArrayObject *)obj;
            /* Equivalent type numbers (int64 is both NPY_LONG and NPY_LONGLONG here), native
               byte order, aligned; C layout unless the signature takes strides; writeable
               unless the function only reads it: the kernel reads raw memory. */
            if (!PyArray_EquivTypenums(PyArray_TYPE(a), s.typenum) || PyArray_NDIM(a) != s.ndim ||
                (!s.strided && !PyArray_IS_C_CONTIGUOUS(a)) ||
                (!s.readonly && !PyArray_ISWRITEABLE(a)) || !PyArray_ISALIGNED(a) ||
                !PyArray_ISNOTSWAPPED(a))
                return bad_argument(f, i, obj);
            void *data = PyArray_DATA(a);
            memcpy(&slots[k++], &data, sizeof(void *));
            npy_intp *dims = PyArray_DIMS(a);
            for (int d = 0; d < s.ndim; d++) slots[k++] = (int64_t)dims[d];
            if (s.strided) {
                npy_intp *strides = PyArray_STRIDES(a);
                for (int d = 0; d < s.ndim; d++) slots[k++] = (int64_t)strides[d];
            }
            continue;
        }
        long long v;
        switch (s.typenum) {
        case NPY_DOUBLE: case NPY_FLOAT: {
            double x;
            if (PyFloat_CheckExact(obj)) x = PyFloat_AS_DOUBLE(obj);
            else {
                x = PyFloat_AsDouble(obj);
                if (x == -1.0 && PyErr_Occurred()) return bad_argument(f, i, obj);
            }
            if (s.typenum == NPY_DOUBLE) memcpy(&slots[k], &x, sizeof x);
            else {
                if (isfinite(x) && fabs(x) > FLT_MAX) return out_of_range(f, i, obj);
                float y = (float)x; memcpy(&slots[k], &y, sizeof y);
            }
            break;
        }
        case NPY_CDOUBLE: case NPY_CFLOAT: {
            /* complex, float or int (numba converts them too); not strings */
            if (PyUnicode_Check(obj) || PyBytes_Check(obj)) return bad_argument(f, i, obj);
            Py_complex z = PyComplex_AsCComplex(obj);
            if (z.real == -1.0 && PyErr_Occurred()) return bad_argument(f, i, obj);
            if (s.typenum == NPY_CDOUBLE) {
                double parts[2] = {z.real, z.imag};
                memcpy(&slots[k], parts, sizeof parts);
                k++;  /* two slots */
            } else {
                if ((isfinite(z.real) && fabs(z.real) > FLT_MAX) ||
                    (isfinite(z.imag) && fabs(z.imag) > FLT_MAX))
                    return out_of_range(f, i, obj);
                float parts[2] = {(float)z.real, (float)z.imag};
                memcpy(&slots[k], parts, sizeof parts);
            }
            break;
        }
        case NPY_BOOL: {
            /* Booleans and integers (C truth): a truthy string or float is a mistake. */
            if (!PyBool_Check(obj) && !PyArray_IsScalar(obj, Bool) && !PyLong_Check(obj) &&
                !PyArray_IsScalar(obj, Integer))
                return bad_argument(f, i, obj);
            int t = PyObject_IsTrue(obj);
            if (t < 0) return bad_argument(f, i, obj);
            int8_t b = (int8_t)t; memcpy(&slots[k], &b, 1);
            break;
        }
        case NPY_UINT64: {
            if (PyBool_Check(obj) || PyFloat_Check(obj)) return bad_argument(f, i, obj);
            PyObject *idx = PyNumber_Index(obj);
            if (!idx) return bad_argument(f, i, obj);
            unsigned long long u = PyLong_AsUnsignedLongLong(idx);  /* negative: overflow */
            Py_DECREF(idx);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) return out_of_range(f, i, obj);
            memcpy(&slots[k], &u, sizeof u);
            break;
        }
#define INT_CASE(NUM, T, LO, HI) case NUM: { if (to_integer(obj, LO, HI, &v)) { \
            return PyLong_Check(obj) && !PyBool_Check(obj) ? out_of_range(f, i, obj) \
                                                          : bad_argument(f, i, obj); } \
            T t = (T)v; memcpy(&slots[k], &t, sizeof t); break; }
        INT_CASE(NPY_INT64, int64_t, INT64_MIN, INT64_MAX)
        INT_CASE(NPY_INT32, int32_t, INT32_MIN, INT32_MAX)
        INT_CASE(NPY_INT16, int16_t, INT16_MIN, INT16_MAX)
        INT_CASE(NPY_INT8, int8_t, INT8_MIN, INT8_MAX)
        INT_CASE(NPY_UINT32, uint32_t, 0, UINT32_MAX)
        INT_CASE(NPY_UINT16, uint16_t, 0, UINT16_MAX)
        INT_CASE(NPY_UINT8, uint8_t, 0, UINT8_MAX)
#undef INT_CASE
        default:
            PyErr_SetString(PyExc_SystemError, "foxnb: bad argument spec");
            return NULL;
        }
        k++;
    }
    union { foxnb_array a; char bytes[MAX_RESULT]; } res;
    void *excinfo = NULL;
    int32_t status;
    if (f->nogil) {
        Py_BEGIN_ALLOW_THREADS
        status = f->fn(slots, &res, &excinfo);
        Py_END_ALLOW_THREADS
    } else {
        status = f->fn(slots, &res, &excinfo);
    }
    if (status != 0) {
        PyObject *payload;
        if (excinfo) {
            /* numba's excinfo: {char *pickled, int32 size, ...}; NULL size for dynamic ones */
            char *buf; int32_t size;
            memcpy(&buf, excinfo, sizeof buf);
            memcpy(&size, (char *)excinfo + sizeof(void *), sizeof size);
            payload = buf && size > 0 ? PyBytes_FromStringAndSize(buf, size) : Py_NewRef(Py_None);
        } else payload = Py_NewRef(Py_None);
        if (!payload) return NULL;
        PyObject *r = PyObject_CallFunction(f->on_error, "OiO", self_, (int)status, payload);
        Py_DECREF(payload);
        Py_XDECREF(r);
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_RuntimeError, "%U failed with status %d", f->signature, (int)status);
        return NULL;
    }
    valspec r = f->result;
    if (r.ndim) return array_result(f, argv, n, r, &res.a);
    if (r.typenum == TUPLE_TYPENUM) return tuple_result(f, argv, n, res.bytes);
    return scalar_result(r.typenum, res.bytes);
}

static int parse_spec(PyObject *item, valspec *out) {
    out->strided = out->readonly = 0;
    out->offset = 0;
    return PyArg_ParseTuple(item, "ii|ppn", &out->typenum, &out->ndim, &out->strided,
                            &out->readonly, &out->offset) ? 0 : -1;
}

static PyObject *Function_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"library", "address", "release", "name", "signature", "arg_names",
                             "args", "expected", "result", "on_error", "nogil", "items", NULL};
    PyObject *library, *name, *signature, *arg_names, *specs, *expected, *result, *on_error;
    PyObject *items = NULL;
    unsigned long long address, release;
    int nogil = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OKKUUO!O!O!OO|pO!:Function", kwlist, &library,
                                     &address, &release, &name, &signature, &PyTuple_Type,
                                     &arg_names, &PyTuple_Type, &specs, &PyTuple_Type, &expected,
                                     &result, &on_error, &nogil, &PyTuple_Type, &items))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(specs);
    if (n > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "too many arguments");
        return NULL;
    }
    if (PyTuple_GET_SIZE(arg_names) != n || PyTuple_GET_SIZE(expected) != n) {
        PyErr_SetString(PyExc_ValueError, "args, arg_names and expected differ in length");
        return NULL;
    }
    Function *self = (Function *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    Py_ssize_t slots = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (parse_spec(PyTuple_GET_ITEM(specs, i), &self->args[i]) < 0) goto fail;
        valspec *a = &self->args[i];
        slots += a->ndim ? 1 + a->ndim * (a->strided ? 2 : 1) : a->typenum == NPY_CDOUBLE ? 2 : 1;
        if (self->args[i].ndim < 0 || self->args[i].ndim > MAX_NDIM || slots > MAX_SLOTS) {
            PyErr_SetString(PyExc_ValueError, "too many arguments or dimensions");
            goto fail;
        }
    }
    if (parse_spec(result, &self->result) < 0) goto fail;
    self->nitems = items ? PyTuple_GET_SIZE(items) : 0;
    if ((self->result.typenum == TUPLE_TYPENUM) != (self->nitems > 0) ||
        self->nitems > MAX_ITEMS) {
        PyErr_SetString(PyExc_ValueError, "a tuple result needs 1 to 64 items, others none");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < self->nitems; i++) {
        valspec *it = &self->items[i];
        if (parse_spec(PyTuple_GET_ITEM(items, i), it) < 0) goto fail;
        Py_ssize_t size = it->ndim ? (Py_ssize_t)sizeof(foxnb_array) : 16;
        if (it->ndim < 0 || it->ndim > MAX_NDIM || it->offset < 0 ||
            it->offset + size > MAX_RESULT || it->typenum < -1) {
            PyErr_SetString(PyExc_ValueError, "bad tuple item (too many, or too large)");
            goto fail;
        }
    }
    self->vectorcall = Function_vectorcall;
    self->fn = (packed_fn)(uintptr_t)address;
    self->release = (release_fn)(uintptr_t)release;
    self->nargs = n;
    self->nogil = nogil;
    self->library = Py_NewRef(library);
    self->name = Py_NewRef(name);
    self->signature = Py_NewRef(signature);
    self->arg_names = Py_NewRef(arg_names);
    self->expected = Py_NewRef(expected);
    self->on_error = Py_NewRef(on_error);
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static void Function_dealloc(Function *self) {
    Py_XDECREF(self->target);
    Py_XDECREF(self->library); Py_XDECREF(self->name); Py_XDECREF(self->signature);
    Py_XDECREF(self->arg_names); Py_XDECREF(self->expected); Py_XDECREF(self->on_error);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject FunctionType;

/* Take the place of `other` (a rebuilt function): its library, entry point, types and names.
 * References the user holds to `self` then call the new code. The old library object is
 * deliberately kept referenced: a call running in it on another thread (nogil) must not see
 * it unloaded. */
static PyObject *Function_adopt(Function *self, PyObject *other) {
    if (!PyObject_TypeCheck(other, &FunctionType)) {
        PyErr_SetString(PyExc_TypeError, "adopt() takes another foxnb AOT function");
        return NULL;
    }
    Function *o = (Function *)other;
    PyObject *old[5] = {self->name, self->signature, self->arg_names, self->expected,
                        self->on_error};
    size_t start = offsetof(Function, fn);
    memcpy((char *)self + start, (char *)o + start, sizeof(Function) - start);
    Py_XINCREF(self->library); Py_XINCREF(self->name); Py_XINCREF(self->signature);
    Py_XINCREF(self->arg_names); Py_XINCREF(self->expected); Py_XINCREF(self->on_error);
    for (int i = 0; i < 5; i++) Py_XDECREF(old[i]);
    Py_RETURN_NONE;
}

/* A redirected function forwards every call, as it came, to its target. */
static PyObject *Function_forward(PyObject *self_, PyObject *const *argv, size_t nargsf,
                                  PyObject *kwnames) {
    return PyObject_Vectorcall(((Function *)self_)->target, argv, nargsf, kwnames);
}

/* redirect(target): calls run `target` (another version of the function: the JIT or the
 * Python one) instead of the native code; redirect(None) restores the native call. The native
 * path itself is untouched: only the instance's vectorcall pointer changes. */
static PyObject *Function_redirect(Function *self, PyObject *target) {
    if (target != Py_None && !PyCallable_Check(target)) {
        PyErr_SetString(PyExc_TypeError, "redirect() takes a callable or None");
        return NULL;
    }
    if (target == (PyObject *)self) {
        PyErr_SetString(PyExc_ValueError, "a function cannot be redirected to itself");
        return NULL;
    }
    PyObject *old = self->target;
    self->target = target == Py_None ? NULL : Py_NewRef(target);
    self->vectorcall = self->target ? Function_forward : Function_vectorcall;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *Function_redirected(Function *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->target ? self->target : Py_None);
}

static PyGetSetDef Function_getset[] = {
    {"redirected", (getter)Function_redirected, NULL,
     "The callable calls are redirected to, or None (the native code runs).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef Function_methods[] = {
    {"adopt", (PyCFunction)Function_adopt, METH_O,
     "Become another function of the same kind (a rebuild): callers holding this one follow."},
    {"redirect", (PyCFunction)Function_redirect, METH_O,
     "redirect(target): calls run target instead; redirect(None): the native code again."},
    {NULL, NULL, 0, NULL}};

static PyObject *Function_repr(Function *self) {
    return PyUnicode_FromFormat("<foxnb AOT function %U>", self->signature);
}

static PyMemberDef Function_members[] = {
    {"__name__", T_OBJECT, offsetof(Function, name), READONLY, "Function name."},
    {"signature", T_OBJECT, offsetof(Function, signature), READONLY, "Signature text."},
    {"library", T_OBJECT, offsetof(Function, library), READONLY, "The Library it lives in."},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Function, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject FunctionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "foxnb._native._foxcall.Function",
    .tp_basicsize = sizeof(Function),
    .tp_dealloc = (destructor)Function_dealloc,
    .tp_vectorcall_offset = offsetof(Function, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)Function_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A foxnb AOT function bound to its packed entry point.",
    .tp_members = Function_members,
    .tp_methods = Function_methods,
    .tp_getset = Function_getset,
    .tp_new = Function_new,
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_foxcall", "Generic binding for foxnb AOT libraries.", -1, NULL};

PyMODINIT_FUNC PyInit__foxcall(void) {
    import_array();
    if (PyType_Ready(&LibraryType) < 0 || PyType_Ready(&OwnerType) < 0 ||
        PyType_Ready(&FunctionType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Library", (PyObject *)&LibraryType) < 0 ||
        PyModule_AddObjectRef(m, "Function", (PyObject *)&FunctionType) < 0 ||
        PyModule_AddIntConstant(m, "MAX_NDIM", MAX_NDIM) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
