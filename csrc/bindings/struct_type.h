// A plain C++ struct as a Python type whose attributes are its fields, read and written in
// place (CPython member descriptors: tens of nanoseconds a field, where a pybind11 property
// costs over a hundred; a decode step at B = 1 sets about ten). A field that does not exist is
// an AttributeError naming it, a value of the wrong type a TypeError (an int field refuses a
// float, a bool field anything but a bool); pointers cross as integers (tensor.data_ptr()).
//
//   StructType<Args> t("pkg.Args", "doc", {field<Args, float>("temperature",
//                                                               offsetof(Args, temperature))});
//   t.add_to(module);
//   Args& value = t.unbox(obj, "argument");  // TypeError unless obj is a t
//
// A new object holds T() (its default member initializers); keyword arguments to the type set
// fields by name. obj.copy() returns an independent copy.
//
// Each StructType<T> is made once per process (its objects are checked against it).
#pragma once
#include <Python.h>
#include <pybind11/pybind11.h>
#include <structmember.h>

#include <cstddef>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

namespace fastsample::bindings {

template <class T>
struct Boxed {
  PyObject_HEAD
  T value;
};

// The member-descriptor kind of a field type.
template <class F>
constexpr int member_kind() {
  if constexpr (std::is_pointer_v<F>) {
    static_assert(sizeof(F) == sizeof(unsigned long long), "pointers cross as 64-bit integers");
    return T_ULONGLONG;
  } else if constexpr (std::is_same_v<F, float>) {
    return T_FLOAT;
  } else if constexpr (std::is_same_v<F, double>) {
    return T_DOUBLE;
  } else if constexpr (std::is_same_v<F, bool>) {
    return T_BOOL;
  } else if constexpr (std::is_same_v<F, int64_t>) {
    static_assert(sizeof(long long) == sizeof(int64_t));
    return T_LONGLONG;
  } else {
    // 32-bit enums too (their codes are checked where the struct is used).
    static_assert(std::is_same_v<F, int32_t> || (std::is_enum_v<F> && sizeof(F) == 4),
                  "no member kind for this field type");
    return T_INT;
  }
}

// One field of T at `offset` (offsetof(T, ...), nested designators allowed). `name` must
// outlive the type (a string literal).
template <class T, class F>
PyMemberDef field(const char* name, size_t offset) {
  return PyMemberDef{name, member_kind<F>(), Py_ssize_t(offsetof(Boxed<T>, value) + offset), 0,
                     nullptr};
}

template <class T>
class StructType {
 public:
  StructType(const char* qualified_name, const char* doc, std::vector<PyMemberDef> fields)
      : members_(std::move(fields)) {
    members_.push_back(PyMemberDef{nullptr, 0, 0, 0, nullptr});
    methods_.push_back(PyMethodDef{"copy", reinterpret_cast<PyCFunction>(&StructType::copy),
                                   METH_NOARGS, "An independent copy."});
    methods_.push_back(PyMethodDef{nullptr, nullptr, 0, nullptr});
    slots_ = {{Py_tp_new, reinterpret_cast<void*>(&StructType::make)},
              {Py_tp_dealloc, reinterpret_cast<void*>(&StructType::destroy)},
              {Py_tp_members, members_.data()},
              {Py_tp_methods, methods_.data()},
              {Py_tp_doc, const_cast<char*>(doc)},
              {0, nullptr}};
    spec_ = PyType_Spec{qualified_name, int(sizeof(Boxed<T>)), 0, Py_TPFLAGS_DEFAULT,
                        slots_.data()};
    type_ = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec_));
    if (type_ == nullptr) throw pybind11::error_already_set();
    instance_ = type_;
  }

  // The type another module made from the same struct (the same headers and compiler, so the
  // same layout): its objects are accepted here as this module's own.
  explicit StructType(pybind11::handle existing) {
    if (!PyType_Check(existing.ptr()) ||
        reinterpret_cast<PyTypeObject*>(existing.ptr())->tp_basicsize !=
            Py_ssize_t(sizeof(Boxed<T>))) {
      throw pybind11::type_error("fastsample: an argument type of another layout");
    }
    type_ = reinterpret_cast<PyTypeObject*>(existing.ptr());
    Py_INCREF(existing.ptr());
    instance_ = type_;
  }

  void add_to(pybind11::module_& m, const char* name) const {
    m.attr(name) = pybind11::reinterpret_borrow<pybind11::object>(
        reinterpret_cast<PyObject*>(type_));
  }

  // The struct inside `obj`; TypeError naming `what` and the expected type otherwise.
  static T& unbox(pybind11::handle obj, const char* what) {
    if (instance_ == nullptr || !PyObject_TypeCheck(obj.ptr(), instance_)) {
      throw pybind11::type_error(std::string(what) + " must be a " +
                                 (instance_ ? instance_->tp_name : "struct") + ", got " +
                                 Py_TYPE(obj.ptr())->tp_name);
    }
    return reinterpret_cast<Boxed<T>*>(obj.ptr())->value;
  }

 private:
  static T& value_of(PyObject* self) { return reinterpret_cast<Boxed<T>*>(self)->value; }

  static PyObject* make(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (args != nullptr && PyTuple_GET_SIZE(args) > 0) {
      PyErr_Format(PyExc_TypeError, "%s() takes keyword arguments only (field=value)",
                   type->tp_name);
      return nullptr;
    }
    PyObject* self = type->tp_alloc(type, 0);
    if (self == nullptr) return nullptr;
    new (&value_of(self)) T();
    if (kwargs != nullptr) {
      PyObject *key, *value;
      Py_ssize_t pos = 0;
      while (PyDict_Next(kwargs, &pos, &key, &value)) {
        if (PyObject_SetAttr(self, key, value) != 0) {
          Py_DECREF(self);
          return nullptr;
        }
      }
    }
    return self;
  }

  // An instance of a heap type holds a reference to its type (taken by tp_alloc).
  static void destroy(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
  }

  static PyObject* copy(PyObject* self, PyObject*) {
    PyTypeObject* type = Py_TYPE(self);
    PyObject* out = type->tp_alloc(type, 0);
    if (out == nullptr) return nullptr;
    new (&value_of(out)) T(value_of(self));
    return out;
  }

  static_assert(std::is_trivially_destructible_v<T>, "the type frees no field");
  std::vector<PyMemberDef> members_;
  std::vector<PyMethodDef> methods_;
  std::vector<PyType_Slot> slots_;
  PyType_Spec spec_{};
  PyTypeObject* type_ = nullptr;
  static inline PyTypeObject* instance_ = nullptr;
};

}  // namespace fastsample::bindings
