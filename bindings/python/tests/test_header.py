"""The ctypes declarations of pastry._native must match include/pastry.h: every function (its
name, argument count and argument/return types), every struct (field names, order, types) and
every constant. The header is parsed here, so the two cannot drift apart silently."""

import ctypes
import os
import re
import unittest
from pathlib import Path

from pastry import _native as N

HEADER = Path(
    os.environ.get("PASTRY_HEADER", Path(__file__).resolve().parents[3] / "include" / "pastry.h")
)

# Typedefs of the header's uint32_t enums.
ENUM_TYPEDEFS = {"pastry_result", "pastry_phase", "pastry_event_kind", "pastry_log_level"}
# Macros that change with every release (not declared in Python).
VOLATILE = {"PASTRY_VERSION_MAJOR", "PASTRY_VERSION_MINOR", "PASTRY_VERSION_PATCH"}
INT_NAMES = {
    "uint8_t": 1,
    "uint16_t": 2,
    "uint32_t": 4,
    "uint64_t": 8,
    "size_t": ctypes.sizeof(ctypes.c_size_t),
}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def c_canon(t):
    """A C type as a canonical string: integer types by size, no const/struct, no spaces."""
    t = re.sub(r"\b(const|struct)\b", " ", t)
    t = " ".join(t.split())
    stars = t.count("*")
    base = t.replace("*", "").strip()
    if base in ENUM_TYPEDEFS:
        base = "uint32_t"
    if base in INT_NAMES:
        base = "u%d" % (8 * INT_NAMES[base])
    return base + "*" * stars


def py_canon(t):
    """A ctypes type as the same canonical string."""
    if t is None:
        return "void"
    if t is ctypes.c_char_p:
        return "char*"
    if t is ctypes.c_void_p:
        return "void*"
    if t is ctypes.c_bool:
        return "bool"
    if t is ctypes.c_char:
        return "char"
    if hasattr(t, "_type_") and isinstance(t._type_, type) and issubclass(t, ctypes._Pointer):
        return py_canon(t._type_) + "*"
    if hasattr(t, "_length_"):
        return "%s[%d]" % (py_canon(t._type_), t._length_)
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData):
        return "u%d" % (8 * ctypes.sizeof(t))
    if isinstance(t, type) and issubclass(t, ctypes.Structure):
        return t.__name__
    if hasattr(t, "_argtypes_"):  # a CFUNCTYPE
        return "%s(*)(%s)" % (py_canon(t._restype_), ",".join(py_canon(a) for a in t._argtypes_))
    raise AssertionError("unmapped ctypes type %r" % (t,))


def split_params(params):
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip() and p.strip() != "void"]


def param_type(p):
    """A parameter declaration without its name (function pointers included)."""
    m = re.match(r"^(.*?)\(\s*\*\s*\w*\s*\)\s*\((.*)\)$", p, flags=re.S)
    if m:
        ret, args = m.group(1), m.group(2)
        return "%s(*)(%s)" % (c_canon(ret), ",".join(param_type(a) for a in split_params(args)))
    m = re.match(r"^(.*?)(\w+)\s*\[(\d+)\]$", p)
    if m:
        return "%s[%s]" % (c_canon(m.group(1)), m.group(3))
    m = re.match(r"^(.*[\s\*])(\w+)$", p)
    return c_canon(m.group(1) if m else p)


def field_name(p):
    m = re.match(r"^.*?\(\s*\*\s*(\w+)\s*\)", p)
    if m:
        return m.group(1)
    m = re.match(r"^.*?(\w+)\s*(\[\d+\])?$", p)
    return m.group(1)


def parse_header(text):
    code = strip_comments(text)
    decls = "\n".join(
        line for line in code.splitlines() if not line.lstrip().startswith(("#", "extern", "}"))
    )
    functions = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(pastry_\w+)\s*\(([^;{}]*)\)\s*;", decls):
        ret, name, params = m.group(1), m.group(2), m.group(3)
        functions[name] = (c_canon(ret), [param_type(p) for p in split_params(params)])
    structs = {}
    for m in re.finditer(r"typedef struct (pastry_\w+) \{(.*?)\} \1;", code, flags=re.S):
        fields = [f.strip() for f in m.group(2).split(";") if f.strip()]
        structs[m.group(1)] = [(field_name(f), param_type(f)) for f in fields]
    constants = {}
    for m in re.finditer(r"#define (PASTRY_\w+) (\d+)", code):
        constants[m.group(1)] = int(m.group(2))
    for m in re.finditer(r"\b(PASTRY_\w+) = (\d+)", code):
        constants[m.group(1)] = int(m.group(2))
    opaque = set(re.findall(r"typedef struct (pastry_\w+) \1;", code))
    return functions, structs, constants, opaque


class HeaderMatchesCtypes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.functions, cls.structs, cls.constants, cls.opaque = parse_header(HEADER.read_text())

    def test_the_parser_sees_the_header(self):
        self.assertGreater(len(self.functions), 40)
        self.assertIn("pastry_route", self.functions)
        self.assertEqual(self.functions["pastry_version"], ("char*", []))
        self.assertEqual(self.opaque, {"pastry_config", "pastry_node", "pastry_runtime"})

    def test_every_function_is_declared_with_the_same_types(self):
        self.assertEqual(sorted(self.functions), sorted(N.PROTOTYPES), "function sets differ")
        for name, (ret, params) in self.functions.items():
            restype, argtypes = N.PROTOTYPES[name]
            with self.subTest(function=name):
                self.assertEqual(len(argtypes), len(params), "argument count of " + name)
                self.assertEqual(py_canon(restype), ret, "return type of " + name)
                self.assertEqual([py_canon(a) for a in argtypes], params, "arguments of " + name)

    def test_every_struct_has_the_same_fields(self):
        self.assertEqual(sorted(self.structs), sorted(N.STRUCTS), "struct sets differ")
        for name, fields in self.structs.items():
            py = [(f[0], py_canon(f[1])) for f in N.STRUCTS[name]._fields_]
            with self.subTest(struct=name):
                self.assertEqual(py, fields)

    def test_every_constant_has_the_same_value(self):
        header = {k: v for k, v in self.constants.items() if k not in VOLATILE}
        self.assertEqual(header, N.CONSTANTS)


if __name__ == "__main__":
    unittest.main()
