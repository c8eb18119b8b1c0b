#!/usr/bin/env python3
"""gen.py - generates Gregor's Kafka protocol codec from proto/schema/*.def.

    gen.py --out-dir DIR FILE.def...

writes DIR/messages.h (types and prototypes) and DIR/messages.c (init, decode,
encode and size functions for every message, one function per struct per
direction), using the runtime helpers of proto/codec.h; and, for the tests
only, DIR/messages_test.h and DIR/messages_test.c (X_fill_random for every
struct and a table of every message type with its versions).

Schema language
===============
One block per message, indentation-based, one field per line. `#` starts a
comment; a comment on a field line, or full-line comments right above a block
or a field, are copied into the generated header as documentation.

    # ApiVersions: the first request every client sends.
    request ApiVersionsRequest key=18 versions=0-4 flexible=3+
      string  ClientSoftwareName     v3+
      string  ClientSoftwareVersion  v3+

Block headers (at column 0):

    request  NAME key=N versions=RANGE [flexible=RANGE]   an API request body
    response NAME key=N versions=RANGE [flexible=RANGE]   an API response body
    header   NAME versions=RANGE [flexible=RANGE]         a frame header
    data     NAME versions=RANGE [flexible=RANGE] [record=N]
                                                         any other versioned message;
                                                         record=N: a KRaft metadata log
                                                         record of record type N
    struct   NAME                                         a reusable struct (a field type)

`flexible` defaults to none. A request and a response with the same key must
agree on versions and flexible versions. Record types are unique.

Field lines (indented under their block):

    TYPE NAME VERSIONS [nullable[=RANGE]] [tag=N] [tagged=RANGE]
                       [default=VALUE] [flexible=RANGE]   [# doc]

TYPE is a primitive (bool int8 int16 int32 int64 uint16 uint32 float64 uuid
string bytes records varint varlong), a struct name, or `[]` followed by
either (an array). A struct-typed field followed by more-indented field lines
defines that struct inline (named by the type, local to its block); without
them it names an inline struct of the same block or a top-level `struct`.

VERSIONS and RANGE: `vN+` (N and later), `vN-M`, `vN`, or `none`; the leading
`v` is optional in attributes.

    nullable      the field may be null in RANGE (bare: in all its versions).
                  Nullable strings/bytes/arrays use length -1 (compact: 0);
                  a nullable struct is preceded by an int8 marker, -1 or 1.
                  `records` is nullable unless it says nullable=none.
    tag=N         a tagged field, in the field's versions unless tagged=RANGE
                  says otherwise (the other versions then carry it in line).
                  Tagged fields are written in ascending tag order, and only
                  when they differ from their default.
    default=V     the value while the field is absent or untagged: integers
                  (negative and 0x hex too), floats, true/false, null, "text".
    flexible=R    the versions in which this field uses compact lengths,
                  overriding the block's (RequestHeader.ClientId: none).

Generated C names: a block named ApiVersionsResponse gives the type
gr_api_versions_response; an inline struct ApiVersion in it gives
gr_api_versions_response_api_version (an inline struct whose name already
starts with the block's name, like MetadataResponseTopic in MetadataResponse,
is not prefixed twice: gr_metadata_response_topic); a top-level struct Foo gives
gr_foo. Fields are snake_case; arrays become `T *name; int32_t name_count;`.
"""

import argparse
import os
import re
import sys
import textwrap

MAX_VERSION = 0x7FFF

# Fixed-width primitives: C type, reader, writer, encoded size.
FIXED = {
    'bool': ('bool', 'gr_read_bool', 'gr_write_bool', 1),
    'int8': ('int8_t', 'gr_read_i8', 'gr_write_i8', 1),
    'int16': ('int16_t', 'gr_read_i16', 'gr_write_i16', 2),
    'int32': ('int32_t', 'gr_read_i32', 'gr_write_i32', 4),
    'int64': ('int64_t', 'gr_read_i64', 'gr_write_i64', 8),
    'uint16': ('uint16_t', 'gr_read_u16', 'gr_write_u16', 2),
    'uint32': ('uint32_t', 'gr_read_u32', 'gr_write_u32', 4),
    'float64': ('double', 'gr_read_f64', 'gr_write_f64', 8),
    'uuid': ('gr_uuid', 'gr_read_uuid', 'gr_write_uuid', 16),
}
# Zig-zag varints: C type, reader, writer, size function.
VARINT = {
    'varint': ('int32_t', 'gr_read_varint', 'gr_write_varint', 'gr_varint_size'),
    'varlong': ('int64_t', 'gr_read_varlong', 'gr_write_varlong', 'gr_varlong_size'),
}
# Length-prefixed values: C type, helper suffix, classic prefix size.
LENGTHY = {
    'string': ('gr_str', 'str', 2),
    'bytes': ('gr_bytes', 'bytes', 4),
    'records': ('gr_bytes', 'bytes', 4),
}
INT_RANGES = {
    'int8': (-(1 << 7), (1 << 7) - 1),
    'int16': (-(1 << 15), (1 << 15) - 1),
    'int32': (-(1 << 31), (1 << 31) - 1),
    'int64': (-(1 << 63), (1 << 63) - 1),
    'uint16': (0, (1 << 16) - 1),
    'uint32': (0, (1 << 32) - 1),
    'varint': (-(1 << 31), (1 << 31) - 1),
    'varlong': (-(1 << 63), (1 << 63) - 1),
}
PRIMITIVES = set(FIXED) | set(VARINT) | set(LENGTHY)

C_KEYWORDS = set('''auto break case char const continue default do double else enum
extern float for goto if inline int long register restrict return short signed
sizeof static struct switch typedef union unsigned void volatile while bool true
false'''.split())

BLOCK_KINDS = ('request', 'response', 'header', 'data', 'struct')


class SchemaError(Exception):
    """A mistake in a schema file, reported as file:line: message."""

    def __init__(self, loc, msg):
        super().__init__(f'{loc}: {msg}')


def snake(name):
    """CamelCase -> snake_case (ApiKeys -> api_keys, IsrNodes -> isr_nodes)."""
    s = re.sub(r'([A-Z]+)([A-Z][a-z])', r'\1_\2', name)
    s = re.sub(r'([a-z0-9])([A-Z])', r'\1_\2', s)
    return s.lower()


class Range:
    """An inclusive version range; empty when lo > hi."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    @staticmethod
    def parse(text, loc):
        t = text[1:] if text.startswith('v') else text
        if t == 'none':
            return Range(1, 0)
        m = re.fullmatch(r'(\d+)(\+|-(\d+))?', t)
        if not m:
            raise SchemaError(loc, f'bad version range {text!r} (want vN+, vN-M, vN or none)')
        lo = int(m.group(1))
        hi = MAX_VERSION if m.group(2) == '+' else int(m.group(3) or lo)
        if lo > hi or hi > MAX_VERSION:
            raise SchemaError(loc, f'bad version range {text!r}')
        return Range(lo, hi)

    def empty(self):
        return self.lo > self.hi

    def __and__(self, other):
        return Range(max(self.lo, other.lo), min(self.hi, other.hi))

    def covers(self, other):
        return other.empty() or (self.lo <= other.lo and other.hi <= self.hi)

    def __eq__(self, other):
        return (self.empty() and other.empty()) or (self.lo, self.hi) == (other.lo, other.hi)

    def minus(self, other, loc):
        """self without other; an error if that would leave two pieces."""
        cut = self & other
        if cut.empty():
            return self
        left, right = Range(self.lo, cut.lo - 1), Range(cut.hi + 1, self.hi)
        if not left.empty() and not right.empty():
            raise SchemaError(loc, 'tagged versions must be at one end of the field\'s versions')
        return right if left.empty() else left

    def __str__(self):
        if self.empty():
            return 'none'
        if self.hi == MAX_VERSION:
            return f'{self.lo}+'
        return f'{self.lo}' if self.lo == self.hi else f'{self.lo}-{self.hi}'

    def cond(self, ctx):
        """A C condition on `version` meaning `version in self`, given that
        version is known to lie in ctx."""
        r = self & ctx
        if r.empty():
            return 'false'
        parts = []
        if r.lo > ctx.lo:
            parts.append(f'version >= {r.lo}')
        if r.hi < ctx.hi:
            parts.append(f'version <= {r.hi}')
        if len(parts) == 2 and r.lo == r.hi:
            return f'version == {r.lo}'
        return ' && '.join(parts) or 'true'


ALL_VERSIONS = Range(0, MAX_VERSION)


class Field:
    def __init__(self, loc, type_text, name, doc):
        self.loc = loc
        self.name = name
        self.is_array = type_text.startswith('[]')
        self.type = type_text[2:] if self.is_array else type_text
        self.doc = doc
        self.c = snake(name)
        if self.c in C_KEYWORDS:
            self.c += '_'
        self.versions = None
        self.nullable = Range(1, 0)
        self.tag = None
        self.tagged = None
        self.default = None  # raw text
        self.flexible = None
        self.struct = None  # resolved Struct for struct-typed fields
        self.inline = None  # Struct defined under this field

    @property
    def is_struct(self):
        return self.type not in PRIMITIVES

    def tagged_versions(self):
        return self.tagged if self.tag is not None else Range(1, 0)

    def inline_versions(self):
        """Versions in which the field sits in the body (not tagged)."""
        return self.versions.minus(self.tagged_versions(), self.loc)


class Struct:
    def __init__(self, loc, kind, name, doc, owner=None):
        self.loc = loc
        self.kind = kind  # one of BLOCK_KINDS, or 'nested'
        self.name = name
        self.doc = doc
        self.owner = owner  # the top-level block an inline struct lives in
        self.fields = []
        self.nested = {}  # name -> inline Struct (top-level blocks only)
        self.key = None
        self.record = None  # metadata log record type (data blocks only)
        self.versions = ALL_VERSIONS
        self.flexible = Range(1, 0)
        self.c = None

    @property
    def is_message(self):
        return self.kind in ('request', 'response', 'header', 'data')

    def top(self):
        return self.owner or self

    def ctx(self):
        """The versions this struct's code can be called with."""
        top = self.top()
        return top.versions if top.is_message else ALL_VERSIONS


def split_comment(line):
    """Splits `text # comment` (a # inside double quotes is text)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == '#' and not quoted:
            return line[:i], line[i + 1:].strip()
    return line, None


def tokenize(text, loc):
    tokens = re.findall(r'(?:[^\s"]|"[^"]*")+', text)
    if ''.join(tokens).count('"') % 2:
        raise SchemaError(loc, 'unterminated string')
    return tokens


def parse_attrs(tokens, loc, allowed):
    attrs = {}
    for tok in tokens:
        key, eq, value = tok.partition('=')
        if key not in allowed:
            raise SchemaError(loc, f'unknown attribute {key!r} (expected one of {", ".join(allowed)})')
        if key in attrs:
            raise SchemaError(loc, f'attribute {key!r} given twice')
        if not eq and key != 'nullable':
            raise SchemaError(loc, f'attribute {key!r} needs a value ({key}=...)')
        attrs[key] = value if eq else None
    return attrs


class Schema:
    def __init__(self):
        self.blocks = []  # top-level blocks in file order
        self.by_name = {}

    # ---- parsing ----

    def parse_file(self, path):
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        stack = []  # [indent, Struct-or-Field, child indent]
        doc = []
        for lineno, raw in enumerate(lines, 1):
            loc = f'{path}:{lineno}'
            text, comment = split_comment(raw.rstrip())
            lead = text[:len(text) - len(text.lstrip())]
            if '\t' in lead:
                raise SchemaError(loc, 'indent with spaces, not tabs')
            if not text.strip():
                if comment is not None:
                    doc.append(comment)
                else:
                    doc = []
                continue
            if comment:
                doc.append(comment)
            indent = len(lead)
            tokens = tokenize(text.strip(), loc)
            if indent == 0:
                block = self.parse_block(tokens, loc, ' '.join(doc))
                stack = [[0, block, None]]
            else:
                while stack and stack[-1][0] >= indent:
                    stack.pop()
                if not stack:
                    raise SchemaError(loc, 'field outside a block')
                entry = stack[-1]
                if entry[2] is None:
                    entry[2] = indent
                elif entry[2] != indent:
                    raise SchemaError(loc, 'indentation does not match the fields above it')
                parent = entry[1]
                if isinstance(parent, Field):
                    parent = self.open_inline(parent, stack[0][1])
                field = self.parse_field(tokens, loc, ' '.join(doc))
                if any(f.c == field.c for f in parent.fields):
                    raise SchemaError(loc, f'field {field.name} defined twice in {parent.name}')
                parent.fields.append(field)
                stack.append([indent, field, None])
            doc = []

    def parse_block(self, tokens, loc, doc):
        kind = tokens[0]
        if kind not in BLOCK_KINDS:
            raise SchemaError(loc, f'expected a block ({", ".join(BLOCK_KINDS)}), got {kind!r}')
        if len(tokens) < 2 or not re.fullmatch(r'[A-Z][A-Za-z0-9]*', tokens[1]):
            raise SchemaError(loc, f'{kind} needs a CamelCase name')
        name = tokens[1]
        if name in self.by_name:
            raise SchemaError(loc, f'{name} already defined at {self.by_name[name].loc}')
        block = Struct(loc, kind, name, doc)
        block.c = 'gr_' + snake(name)
        allowed = {'request': ('key', 'versions', 'flexible'),
                   'response': ('key', 'versions', 'flexible'),
                   'header': ('versions', 'flexible'),
                   'data': ('versions', 'flexible', 'record'),
                   'struct': ()}[kind]
        attrs = parse_attrs(tokens[2:], loc, allowed)
        if kind in ('request', 'response'):
            if 'key' not in attrs or not attrs['key'].isdigit():
                raise SchemaError(loc, f'{kind} needs key=N')
            block.key = int(attrs['key'])
            if not name.endswith(kind.capitalize()):
                raise SchemaError(loc, f'a {kind} name must end in {kind.capitalize()}')
        if 'record' in attrs:
            if not attrs['record'].isdigit() or int(attrs['record']) > 0x7FFF:
                raise SchemaError(loc, 'record=N needs a record type 0..32767')
            block.record = int(attrs['record'])
        if block.is_message:
            if 'versions' not in attrs:
                raise SchemaError(loc, f'{kind} needs versions=RANGE')
            block.versions = Range.parse(attrs['versions'], loc)
            if block.versions.empty() or block.versions.hi == MAX_VERSION:
                raise SchemaError(loc, 'versions must be a closed range like 0-4')
            block.flexible = Range.parse(attrs.get('flexible', 'none'), loc)
        self.blocks.append(block)
        self.by_name[name] = block
        return block

    def open_inline(self, field, top):
        """The struct defined by the lines under a struct-typed field."""
        if field.inline:
            return field.inline
        if not field.is_struct:
            raise SchemaError(field.loc, f'{field.name} has type {field.type}; only struct fields have fields')
        if field.type in top.nested:
            raise SchemaError(field.loc, f'struct {field.type} is already defined in {top.name}')
        s = Struct(field.loc, 'nested', field.type, field.doc, top)
        own, base = snake(top.name), snake(field.type)
        s.c = 'gr_' + (base if base.startswith(own + '_') else f'{own}_{base}')
        top.nested[field.type] = s
        field.inline = s
        return s

    def parse_field(self, tokens, loc, doc):
        if len(tokens) < 3:
            raise SchemaError(loc, 'a field is TYPE NAME VERSIONS [attributes]')
        type_text, name, versions = tokens[:3]
        base = type_text[2:] if type_text.startswith('[]') else type_text
        if base not in PRIMITIVES and not re.fullmatch(r'[A-Z][A-Za-z0-9]*', base):
            raise SchemaError(loc, f'unknown type {type_text!r}')
        if not re.fullmatch(r'[A-Z][A-Za-z0-9]*', name):
            raise SchemaError(loc, f'field name {name!r} must be CamelCase')
        f = Field(loc, type_text, name, doc)
        if not re.fullmatch(r'v.*', versions):
            raise SchemaError(loc, f'{name}: expected the field\'s versions (vN+, vN-M, vN), got {versions!r}')
        f.versions = Range.parse(versions, loc)
        attrs = parse_attrs(tokens[3:], loc, ('nullable', 'tag', 'tagged', 'default', 'flexible'))
        if 'nullable' in attrs:
            v = attrs['nullable']
            f.nullable = f.versions if v is None else Range.parse(v, loc)
        elif f.type == 'records' and not f.is_array:
            f.nullable = f.versions
        if 'tag' in attrs:
            if not attrs['tag'].isdigit():
                raise SchemaError(loc, 'tag=N needs a non-negative integer')
            f.tag = int(attrs['tag'])
            if f.tag > 0x7FFFFFFF:
                raise SchemaError(loc, f'{name}: tag {f.tag} is too large')
            f.tagged = Range.parse(attrs['tagged'], loc) if 'tagged' in attrs else f.versions
            if not f.versions.covers(f.tagged):
                raise SchemaError(loc, f'{name}: tagged versions outside the field\'s versions')
            f.inline_versions()  # checks the shape
        elif 'tagged' in attrs:
            raise SchemaError(loc, f'{name}: tagged=RANGE without tag=N')
        if 'flexible' in attrs:
            if f.is_struct and not f.is_array:
                raise SchemaError(loc, f'{name}: flexible= applies to strings, bytes and arrays')
            f.flexible = Range.parse(attrs['flexible'], loc)
        if 'default' in attrs:
            f.default = attrs['default']
        return f

    # ---- checking ----

    def resolve(self):
        for block in self.blocks:
            for s in [block] + list(block.nested.values()):
                self.check_struct(s)
        self.check_apis()  # also checks that C names are unique
        self.check_cycles()

    def check_struct(self, s):
        if s.kind == 'nested' and s.name in self.by_name:
            raise SchemaError(s.loc, f'{s.name} is also defined at {self.by_name[s.name].loc}')
        tags = {}
        flexible = s.top().flexible if s.top().is_message else ALL_VERSIONS
        for f in s.fields:
            if f.is_struct:
                f.struct = f.inline or s.top().nested.get(f.type)
                if f.struct is None:
                    g = self.by_name.get(f.type)
                    if g is None or g.kind != 'struct':
                        raise SchemaError(f.loc, f'unknown struct {f.type}')
                    f.struct = g
            nullable_ok = f.is_array or f.is_struct or f.type in LENGTHY
            if not f.nullable.empty() and not nullable_ok:
                raise SchemaError(f.loc, f'{f.name}: type {f.type} cannot be nullable')
            if f.tag is not None:
                if f.tag in tags:
                    raise SchemaError(f.loc, f'tag {f.tag} already used by {tags[f.tag]}')
                tags[f.tag] = f.name
                if not flexible.covers(f.tagged):
                    raise SchemaError(f.loc, f'{f.name}: tagged in versions that are not flexible')
            if f.default is not None:
                default_c(f)  # validates

    def check_cycles(self):
        state = {}

        def visit(s, path):
            if state.get(s.c) == 'done':
                return
            if state.get(s.c) == 'open':
                raise SchemaError(s.loc, 'struct contains itself: ' + ' -> '.join(path + [s.name]))
            state[s.c] = 'open'
            for f in s.fields:
                if f.struct is not None:
                    visit(f.struct, path + [s.name])
            state[s.c] = 'done'

        for block in self.blocks:
            visit(block, [])

    def check_apis(self):
        requests, responses = {}, {}
        for b in self.blocks:
            table = requests if b.kind == 'request' else responses if b.kind == 'response' else None
            if table is None:
                continue
            if b.key in table:
                raise SchemaError(b.loc, f'API key {b.key} already used by {table[b.key].name}')
            table[b.key] = b
        for key, resp in responses.items():
            req = requests.get(key)
            if req is None:
                raise SchemaError(resp.loc, f'{resp.name} has no request with key {key}')
            if req.name[:-len('Request')] != resp.name[:-len('Response')]:
                raise SchemaError(resp.loc, f'{resp.name} does not match {req.name}')
            if req.versions != resp.versions or req.flexible != resp.flexible:
                raise SchemaError(resp.loc, f'{resp.name} versions differ from {req.name}')
        self.requests, self.responses = requests, responses
        records = {}
        for b in self.blocks:
            if b.record is not None:
                if b.record in records:
                    raise SchemaError(b.loc, f'record type {b.record} already used by {records[b.record].name}')
                records[b.record] = b
        self.records = records
        names = {}
        for b in self.blocks:
            for s in [b] + list(b.nested.values()):
                if s.c in names:
                    raise SchemaError(s.loc, f'C name {s.c} clashes with {names[s.c]}')
                names[s.c] = f'{s.name} at {s.loc}'

    # ---- ordering ----

    def all_structs(self):
        """Every struct, each after the structs it contains."""
        out, seen = [], set()

        def visit(s):
            if id(s) in seen:
                return
            seen.add(id(s))
            for f in s.fields:
                if f.struct is not None:
                    visit(f.struct)
            out.append(s)

        for b in self.blocks:
            if b.kind == 'struct':
                visit(b)
        for b in self.blocks:
            visit(b)
        return out


# ---- C expressions ----

def c_int(value, type_name):
    lo, hi = INT_RANGES[type_name]
    bits = {'int8': 8, 'int16': 16, 'int32': 32, 'int64': 64, 'varint': 32, 'varlong': 64}.get(type_name)
    if bits and value == lo:
        return f'INT{bits}_MIN'
    text = str(value)
    if type_name in ('int64', 'varlong') and not (-(1 << 31) < value < (1 << 31)):
        return f'INT64_C({text})'
    if type_name == 'uint32' and value > (1 << 31) - 1:
        return f'{text}u'
    return text


def default_c(f):
    """The C value of f's default, or None when it is the all-zero value."""
    d = f.default
    t = f.type
    if f.is_array or f.is_struct or t in ('bytes', 'records') or t == 'uuid':
        if d is None:
            return None
        if t == 'uuid' and not f.is_array:
            raise SchemaError(f.loc, f'{f.name}: a uuid field has no default (it is all zeros)')
        if d != 'null':
            raise SchemaError(f.loc, f'{f.name}: the only default a {f.type} can have is null')
        if f.nullable.empty():
            raise SchemaError(f.loc, f'{f.name}: default=null on a field that is never nullable')
        return 'null'
    if d is None:
        return None
    if t == 'string':
        if d == 'null':
            if f.nullable.empty():
                raise SchemaError(f.loc, f'{f.name}: default=null on a field that is never nullable')
            return 'GR_STR_NULL'
        if not (len(d) >= 2 and d[0] == d[-1] == '"') or '\\' in d:
            raise SchemaError(f.loc, f'{f.name}: a string default is null or "text"')
        return None if d == '""' else f'(gr_str){{{d}, {len(d) - 2}}}'
    if t == 'bool':
        if d not in ('true', 'false'):
            raise SchemaError(f.loc, f'{f.name}: a bool default is true or false')
        return None if d == 'false' else 'true'
    if t == 'float64':
        try:
            v = float(d)
        except ValueError:
            raise SchemaError(f.loc, f'{f.name}: bad float default {d!r}') from None
        return None if v == 0 and not d.startswith('-') else d
    m = re.fullmatch(r'(-?)(0x[0-9a-fA-F]+|\d+)', d)
    if not m:
        raise SchemaError(f.loc, f'{f.name}: bad integer default {d!r}')
    v = int(m.group(2), 0) * (-1 if m.group(1) else 1)
    lo, hi = INT_RANGES[t]
    if not lo <= v <= hi:
        raise SchemaError(f.loc, f'{f.name}: default {d} does not fit type {t}')
    if v == 0:
        return None
    return d if m.group(2).startswith('0x') and not m.group(1) and t not in ('int64', 'varlong') \
        else c_int(v, t)


def negate(cond):
    """The C negation of a condition, kept readable."""
    if '&&' not in cond and '||' not in cond:
        if ' == ' in cond:
            return cond.replace(' == ', ' != ')
        if re.fullmatch(r'!\s*[\w.>-]+', cond):
            return cond[1:]
        if re.fullmatch(r'\(?!?[\w.>-]+\)?|[\w]+\([^()]*\)', cond):
            return '!' + cond
    return f'!({cond})'


def ternary(cond, a, b):
    if cond == 'true':
        return str(a)
    if cond == 'false':
        return str(b)
    return f'({cond} ? {a} : {b})'


def field_attrs(f):
    parts = [f'v{f.versions}']
    if not f.nullable.empty():
        parts.append('nullable' if f.nullable == f.versions else f'nullable {f.nullable}')
    if f.tag is not None:
        parts.append(f'tag {f.tag}' + ('' if f.tagged == f.versions else f' in {f.tagged}'))
    if f.default is not None:
        parts.append(f'default {f.default}')
    if f.flexible is not None:
        parts.append(f'compact in {f.flexible}')
    return ', '.join(parts)


def c_comment(text, indent='', width=80):
    """A block comment, wrapped to width."""
    text = text.replace('*/', '* /')
    lines = textwrap.wrap(text, width - len(indent) - 3)
    if len(lines) == 1 and len(lines[0]) + len(indent) + 6 <= width:
        return [f'{indent}/* {lines[0]} */']
    return [f'{indent}/*'] + [f'{indent} * {line}' for line in lines] + [f'{indent} */']


def emit_field_decl(h, f, decl, extra=None):
    """A struct member with its versions and attributes as a comment, and
    its documentation (wrapped above it when it does not fit on the line)."""
    attrs = field_attrs(f)
    line = f'    {decl}; /* {attrs}: {f.doc} */' if f.doc else f'    {decl}; /* {attrs} */'
    if len(line) > 100:
        for c in c_comment(f.doc, '    '):
            h(c)
        line = f'    {decl}; /* {attrs} */'
    h(line)
    if extra:
        h(f'    {extra};')


def c_type(f):
    if f.is_struct:
        return f.struct.c
    if f.type in FIXED:
        return FIXED[f.type][0]
    if f.type in VARINT:
        return VARINT[f.type][0]
    return LENGTHY[f.type][0]


class Out:
    """Collects lines of C with an indentation level."""

    def __init__(self):
        self.lines = []
        self.level = 0

    def __call__(self, text=''):
        self.lines.append(('    ' * self.level + text) if text else '')

    def indent(self):
        self.level += 1

    def dedent(self):
        self.level -= 1

    def text(self):
        return '\n'.join(self.lines) + '\n'


class StructGen:
    """Emits the functions of one struct."""

    def __init__(self, s):
        self.s = s
        self.ctx = s.ctx()

    def present(self, f):
        return f.inline_versions().cond(self.ctx)

    def tagged(self, f):
        return f.tagged_versions().cond(self.ctx)

    # Nullability and compactness are only asked about inside code that runs
    # for the field's own versions, so they are judged within those.
    def nullable(self, f):
        return f.nullable.cond(f.versions & self.ctx)

    def compact(self, f):
        return 'flex' if f.flexible is None else f.flexible.cond(f.versions & self.ctx)

    # -- reading --

    def read_value(self, f, lv, r, elem):
        """One statement reading a single value (a field or an array item)."""
        nul = 'false' if elem else self.nullable(f)
        if f.is_struct:
            return f'TRY({f.struct.c}_read(&{lv}, {r}, version, flex, a));'
        if f.type in LENGTHY:
            kind = LENGTHY[f.type][1]
            return f'TRY(gr_proto_read_{kind}({r}, {self.compact(f)}, {nul}, &{lv}));'
        fn = FIXED[f.type][1] if f.type in FIXED else VARINT[f.type][1]
        return f'TRY({fn}({r}, &{lv}));'

    def elem_min(self, f):
        if f.is_struct:
            return f'{f.struct.c}_min_size(version, flex)'
        if f.type in FIXED:
            return str(FIXED[f.type][3])
        if f.type in VARINT:
            return '1'
        return ternary(self.compact(f), 1, LENGTHY[f.type][2])

    def read_field(self, o, f, r):
        lv = f'm->{f.c}'
        if f.is_array:
            o(f'TRY(gr_proto_read_count({r}, {self.compact(f)}, {self.nullable(f)}, '
              f'{self.elem_min(f)}, &{lv}_count));')
            o(f'{lv} = gr_proto_alloc_array(a, {lv}_count, sizeof *{lv});')
            o(f'if ({lv}_count > 0 && !{lv})')
            o('    return GR_ERR_NOMEM;')
            o(f'for (int32_t i = 0; i < {lv}_count; i++)')
            o('    ' + self.read_value(f, f'{lv}[i]', r, True))
        elif f.is_struct and self.nullable(f) != 'false':
            nul = self.nullable(f)
            o(f'{lv}_present = true;')
            if nul == 'true':
                o(f'TRY(gr_proto_read_present({r}, &{lv}_present));')
            else:
                o(f'if ({nul})')
                o(f'    TRY(gr_proto_read_present({r}, &{lv}_present));')
            o(f'if ({lv}_present)')
            o('    ' + self.read_value(f, lv, r, False))
        else:
            o(self.read_value(f, lv, r, False))

    # -- writing --

    def write_value(self, f, lv, w, elem):
        nul = 'false' if elem else self.nullable(f)
        if f.is_struct:
            return f'TRY({f.struct.c}_write(&{lv}, {w}, version, flex));'
        if f.type in LENGTHY:
            kind = LENGTHY[f.type][1]
            return f'TRY(gr_proto_write_{kind}({w}, {self.compact(f)}, {nul}, {lv}));'
        fn = FIXED[f.type][2] if f.type in FIXED else VARINT[f.type][2]
        return f'{fn}({w}, &{lv});' if f.type == 'uuid' else f'{fn}({w}, {lv});'

    def write_field(self, o, f, w):
        lv = f'm->{f.c}'
        if f.is_array:
            o(f'TRY(gr_proto_write_count({w}, {self.compact(f)}, {self.nullable(f)}, '
              f'{lv}_count, {lv}));')
            o(f'for (int32_t i = 0; i < {lv}_count; i++)')
            o('    ' + self.write_value(f, f'{lv}[i]', w, True))
        elif f.is_struct and self.nullable(f) != 'false':
            o(f'TRY(gr_proto_write_present({w}, {self.nullable(f)}, {lv}_present));')
            o(f'if ({lv}_present)')
            o('    ' + self.write_value(f, lv, w, False))
        else:
            o(self.write_value(f, lv, w, False))

    # -- sizing --

    def value_size(self, f, lv, elem):
        if f.is_struct:
            return f'{f.struct.c}_wire_size(&{lv}, version, flex)'
        if f.type in LENGTHY:
            return f'gr_proto_{LENGTHY[f.type][1]}_size({self.compact(f)}, {lv})'
        if f.type in VARINT:
            return f'{VARINT[f.type][3]}({lv})'
        return str(FIXED[f.type][3])

    def size_field(self, o, f, n):
        lv = f'm->{f.c}'
        if f.is_array:
            o(f'{n} += gr_proto_count_size({self.compact(f)}, {lv}_count);')
            if f.type in FIXED:
                o(f'if ({lv}_count > 0)')
                o(f'    {n} += (size_t){lv}_count * {FIXED[f.type][3]};')
            else:
                o(f'for (int32_t i = 0; i < {lv}_count; i++)')
                o(f'    {n} += {self.value_size(f, f"{lv}[i]", True)};')
        elif f.is_struct and self.nullable(f) != 'false':
            nul = self.nullable(f)
            o(f'{n} += 1;' if nul == 'true' else f'{n} += {nul} ? 1 : 0;')
            o(f'if ({lv}_present)')
            o(f'    {n} += {self.value_size(f, lv, False)};')
        else:
            o(f'{n} += {self.value_size(f, lv, False)};')

    def min_field(self, f):
        if f.is_array:
            return ternary(self.compact(f), 1, 4)
        if f.is_struct:
            sub = f'{f.struct.c}_min_size(version, flex)'
            return ternary(self.nullable(f), 1, sub)
        if f.type in LENGTHY:
            return ternary(self.compact(f), 1, LENGTHY[f.type][2])
        return '1' if f.type in VARINT else str(FIXED[f.type][3])

    # -- defaults --

    def is_default(self, f, lv='m->'):
        """A C condition that holds when the field equals its default."""
        x = lv + f.c
        d = default_c(f)
        if f.is_array:
            return f'{x}_count == -1' if d == 'null' else f'{x}_count == 0'
        if f.is_struct:
            inner = f'{f.struct.c}_is_default(&{x})'
            if f.nullable.empty():
                return inner
            if d == 'null':
                return f'!{x}_present'
            return f'({x}_present && {inner})'
        if f.type == 'string':
            lit = 'NULL' if d == 'GR_STR_NULL' else (f.default if d else '""')
            return f'gr_proto_str_is({x}, {lit})'
        if f.type in ('bytes', 'records'):
            return f'{x}.len == -1' if d == 'null' else f'{x}.len == 0'
        if f.type == 'uuid':
            return f'gr_uuid_is_zero(&{x})'
        if f.type == 'bool':
            return f'{x}' if d == 'true' else f'!{x}'
        return f'{x} == {d or 0}'

    # -- whole functions --

    def emit_init(self, o):
        s = self.s
        o(f'void {s.c}_init({s.c} *m)')
        o('{')
        o.indent()
        o('memset(m, 0, sizeof *m);')
        for f in s.fields:
            d = default_c(f)
            lv = f'm->{f.c}'
            if f.is_array:
                if d == 'null':
                    o(f'{lv}_count = -1;')
            elif f.is_struct:
                o(f'{f.struct.c}_init(&{lv});')
                if not f.nullable.empty() and d != 'null':
                    o(f'{lv}_present = true;')
            elif d == 'null':
                o(f'{lv} = GR_BYTES_NULL;')
            elif d is not None:
                o(f'{lv} = {d};')
        o.dedent()
        o('}')

    def guarded(self, o, cond, body):
        """Emits body() under `if (cond)`, or alone when cond is true."""
        if cond == 'false':
            return
        if cond == 'true':
            body(o)
            return
        inner = Out()
        body(inner)
        o(f'if ({cond})' + (' {' if len(inner.lines) > 1 else ''))
        for line in inner.lines:
            o('    ' + line if line else '')
        if len(inner.lines) > 1:
            o('}')

    def tagged_fields(self):
        fields = [f for f in self.s.fields if f.tag is not None and self.tagged(f) != 'false']
        return sorted(fields, key=lambda f: f.tag)

    def finish(self, o, head):
        """Closes a function, marking parameters it did not use."""
        body = '\n'.join(o.lines[head:])
        # A member access (m->version) is not a use of the parameter.
        unused = [p for p in self.params if not re.search(rf'(?<!->)(?<!\.)\b{p}\b', body)]
        for i, p in enumerate(unused):
            o.lines.insert(head + i, f'    (void){p};')
        o('}')

    def emit_read(self, o):
        s = self.s
        o(f'static int {s.c}_read({s.c} *m, gr_reader *r, int16_t version, bool flex, gr_arena *a)')
        o('{')
        head = len(o.lines)
        o.indent()
        o(f'{s.c}_init(m);')
        for f in s.fields:
            if self.present(f) != 'false':
                o(f'/* {f.name} */')
            self.guarded(o, self.present(f), lambda out, f=f: self.read_field(out, f, 'r'))
        tagged = self.tagged_fields()
        if not tagged:
            o('if (flex)')
            o('    TRY(gr_proto_skip_tags(r));')
        else:
            o('if (flex) {')
            o.indent()
            o('uint32_t ntags;')
            o('TRY(gr_proto_read_tag_count(r, &ntags));')
            o('for (uint32_t t = 0; t < ntags; t++) {')
            o.indent()
            o('uint32_t tag;')
            o('gr_reader v;')
            o('TRY(gr_proto_read_tag(r, &tag, &v));')
            o('switch (tag) {')
            for f in tagged:
                o(f'case {f.tag}: /* {f.name} */')
                o.indent()
                self.guarded(o, self.tagged(f), lambda out, f=f: self.read_field(out, f, '&v'))
                o('break;')
                o.dedent()
            o('default: /* unknown tags are skipped */')
            o('    break;')
            o('}')
            o.dedent()
            o('}')
            o.dedent()
            o('}')
        o('return GR_OK;')
        o.dedent()
        self.params = ['version', 'flex', 'a']
        self.finish(o, head)

    def emit_write(self, o):
        s = self.s
        o(f'static int {s.c}_write(const {s.c} *m, gr_writer *w, int16_t version, bool flex)')
        o('{')
        head = len(o.lines)
        o.indent()
        for f in s.fields:
            if self.present(f) != 'false':
                o(f'/* {f.name} */')
            self.guarded(o, self.present(f), lambda out, f=f: self.write_field(out, f, 'w'))
        tagged = self.tagged_fields()
        if not tagged:
            o('if (flex)')
            o('    gr_write_uvarint(w, 0); /* no tagged fields */')
        else:
            o('if (flex) {')
            o.indent()
            for f in tagged:
                cond = self.tagged(f)
                cond = '' if cond == 'true' else f'{cond} && '
                o(f'bool put_{f.c} = {cond}{negate(self.is_default(f))};')
            o('gr_write_uvarint(w, (uint32_t)(' + ' + '.join(f'put_{f.c}' for f in tagged) + '));')
            for f in tagged:
                o(f'if (put_{f.c}) {{ /* {f.name} */')
                o.indent()
                o('size_t size = 0;')
                self.size_field(o, f, 'size')
                o(f'TRY(gr_proto_write_tag(w, {f.tag}, size));')
                self.write_field(o, f, 'w')
                o.dedent()
                o('}')
            o.dedent()
            o('}')
        o('return w->err;')
        o.dedent()
        self.params = ['m', 'version', 'flex']
        self.finish(o, head)

    def emit_size(self, o):
        s = self.s
        o(f'static size_t {s.c}_wire_size(const {s.c} *m, int16_t version, bool flex)')
        o('{')
        head = len(o.lines)
        o.indent()
        o('size_t n = 0;')
        for f in s.fields:
            if self.present(f) != 'false':
                o(f'/* {f.name} */')
            self.guarded(o, self.present(f), lambda out, f=f: self.size_field(out, f, 'n'))
        tagged = self.tagged_fields()
        if not tagged:
            o('if (flex)')
            o('    n += 1; /* no tagged fields */')
        else:
            o('if (flex) {')
            o.indent()
            o('uint32_t ntags = 0;')
            for f in tagged:
                cond = self.tagged(f)
                cond = '' if cond == 'true' else f'{cond} && '
                o(f'if ({cond}{negate(self.is_default(f))}) {{ /* {f.name} */')
                o.indent()
                o('size_t size = 0;')
                self.size_field(o, f, 'size')
                o(f'n += gr_proto_tag_size({f.tag}, size);')
                o('ntags++;')
                o.dedent()
                o('}')
            o('n += gr_uvarint_size(ntags);')
            o.dedent()
            o('}')
        o('return n;')
        o.dedent()
        self.params = ['m', 'version', 'flex']
        self.finish(o, head)

    def emit_min_size(self, o):
        s = self.s
        o('/* The fewest bytes one encoded item can take (bounds decoded array counts). */')
        o(f'static size_t {s.c}_min_size(int16_t version, bool flex)')
        o('{')
        head = len(o.lines)
        o.indent()
        o('size_t n = 0;')
        for f in s.fields:
            cond = self.present(f)
            if cond != 'false':
                stmt = f'n += {self.min_field(f)}; /* {f.name} */'
                o(stmt if cond == 'true' else f'if ({cond})')
                if cond != 'true':
                    o('    ' + stmt)
        o('if (flex)')
        o('    n += 1; /* tagged fields */')
        o('return n;')
        o.dedent()
        self.params = ['version', 'flex']
        self.finish(o, head)

    def emit_is_default(self, o):
        s = self.s
        o(f'static bool {s.c}_is_default(const {s.c} *m)')
        o('{')
        conds = [self.is_default(f) for f in s.fields]
        if not conds:
            o('    (void)m;')
            o('    return true;')
        else:
            o('    return ' + (' &&\n           '.join(conds)) + ';')
        o('}')

    def emit_public(self, o):
        s = self.s
        v = s.versions
        bad = f'version < {v.lo} || version > {v.hi}'
        flex = s.flexible.cond(v)
        o(f'int {s.c}_decode({s.c} *m, gr_reader *r, int16_t version, gr_arena *a)')
        o('{')
        o(f'    {s.c}_init(m);')
        o(f'    if ({bad})')
        o('        return GR_ERR_VERSION;')
        o(f'    return {s.c}_read(m, r, version, {flex}, a);')
        o('}')
        o()
        o(f'int {s.c}_encode(const {s.c} *m, int16_t version, gr_writer *w)')
        o('{')
        o(f'    if ({bad})')
        o('        return GR_ERR_VERSION;')
        o('    size_t start = w->len;')
        o(f'    int err = {s.c}_write(m, w, version, {flex});')
        o('    if (err != GR_OK && w->err == GR_OK)')
        o('        w->len = start; /* refused: leave nothing half-written */')
        o('    return err;')
        o('}')
        o()
        o(f'size_t {s.c}_size(const {s.c} *m, int16_t version)')
        o('{')
        o(f'    if ({bad})')
        o('        return 0;')
        o(f'    return {s.c}_wire_size(m, version, {flex});')
        o('}')


def api_name(block):
    """MetadataRequest -> Metadata."""
    suffix = 'Request' if block.kind == 'request' else 'Response'
    return block.name[:-len(suffix)]


def api_enum(block):
    return f'GR_API_{snake(api_name(block)).upper()}'


STATIC_CALL = re.compile(r'\b(gr_\w+?_(?:read|write|wire_size|min_size|is_default))\(')


def functions(s):
    """The C text of every function of struct s: the public ones, which are
    always emitted, and the static ones, emitted only when something calls
    them (so that the output has no unused functions)."""
    g = StructGen(s)
    public, static = [], {}

    def text(emit):
        o = Out()
        emit(o)
        return o.text()

    public.append(text(g.emit_init))
    for suffix, emit in (('min_size', g.emit_min_size), ('is_default', g.emit_is_default),
                         ('read', g.emit_read), ('write', g.emit_write),
                         ('wire_size', g.emit_size)):
        static[f'{s.c}_{suffix}'] = text(emit)
    if s.is_message:
        public.append(text(g.emit_public))
    return public, static


def generate(schema, sources):
    structs = schema.all_structs()
    funcs = {s.c: functions(s) for s in structs}
    all_static = {name: body for _, static in funcs.values() for name, body in static.items()}
    needed, todo = set(), [body for public, _ in funcs.values() for body in public]
    while todo:
        for name in STATIC_CALL.findall(todo.pop()):
            if name not in needed and name in all_static:
                needed.add(name)
                todo.append(all_static[name])

    names = ', '.join(os.path.basename(p) for p in sources)
    banner = [
        '/*',
        ' * Generated from proto/schema by proto/gen.py. Do not edit: change the',
        ' * schema (or the generator) and rebuild.',
        f' * Schemas: {names}',
        ' */',
    ]
    h = Out()
    for line in banner:
        h(line)
    h('#ifndef GR_PROTO_MESSAGES_H')
    h('#define GR_PROTO_MESSAGES_H')
    h()
    h('#include <stdbool.h>')
    h('#include <stddef.h>')
    h('#include <stdint.h>')
    h()
    h('#include "common/buf.h"')
    h()
    h('/*')
    h(' * Every message type X has:')
    h(' *   void   X_init(X *m);      zero, then every field\'s default')
    h(' *   int    X_decode(X *m, gr_reader *r, int16_t version, gr_arena *a);')
    h(' *   int    X_encode(const X *m, int16_t version, gr_writer *w);')
    h(' *   size_t X_size(const X *m, int16_t version);   bytes X_encode writes')
    h(' * Structs inside messages have X_init only.')
    h(' *')
    h(' * decode: GR_OK or a negative GR_ERR_*. It calls init first, so fields a')
    h(' * version does not carry hold their defaults. Strings and bytes point into')
    h(' * the reader\'s buffer; arrays are allocated from the arena. It does not')
    h(' * have to consume all of the reader. encode: GR_OK or a negative GR_ERR_*;')
    h(' * on a refusal (GR_ERR_MALFORMED: null where not nullable, an over-long')
    h(' * string, ...) nothing is left in the writer. Fields a version does not')
    h(' * carry are ignored by encode.')
    h(' *')
    h(' * Strings and bytes: len -1 is null. Arrays: T *x; int32_t x_count, where')
    h(' * x_count -1 is null. A nullable struct x has bool x_present.')
    h(' */')
    h()
    apis = sorted(schema.requests.values(), key=lambda b: b.key)
    if apis:
        h('/* API keys of the requests defined here. */')
        h('enum {')
        for b in apis:
            h(f'    {api_enum(b)} = {b.key},')
        h('};')
        h()
    h('typedef struct {')
    h('    int16_t key;')
    h('    const char *name;')
    h('    int16_t min_version, max_version;')
    h('    int16_t flexible_min; /* first flexible version; -1: never flexible */')
    h('} gr_api_info;')
    h()
    h('/* The API with this key, or NULL if it is not defined. */')
    h('const gr_api_info *gr_api_lookup(int16_t key);')
    h('/*')
    h(' * The request header version (2 for flexible versions, else 1) and the')
    h(' * response header version (1 for flexible versions, else 0; always 0 for')
    h(' * ApiVersions, whose response a client reads before it knows our versions).')
    h(' * A version above the API\'s range is judged by its flexible range too, so')
    h(' * the header of a too-new request can still be read. -1: unknown key.')
    h(' */')
    h('int16_t gr_request_header_version(int16_t key, int16_t version);')
    h('int16_t gr_response_header_version(int16_t key, int16_t version);')
    h()
    h('/*')
    h(' * Any request or response body by API key. decode allocates the message')
    h(' * struct from the arena and sets *out (only on success); m is a pointer to')
    h(' * the message struct of that key. An unknown key is GR_ERR_VERSION.')
    h(' */')
    for d in ('request', 'response'):
        h(f'int gr_{d}_decode(int16_t key, int16_t version, gr_reader *r, gr_arena *a, void **out);')
        h(f'int gr_{d}_encode(int16_t key, int16_t version, const void *m, gr_writer *w);')
        h(f'size_t gr_{d}_size(int16_t key, int16_t version, const void *m);')
    h()

    c = Out()
    for line in banner:
        c(line)
    c('#include "proto/messages.h"')
    c()
    c('#include <string.h>')
    c()
    c('#include "proto/codec.h"')
    c()
    c('/* Returns the error of a failed step. */')
    c('#define TRY(expr)                  \\')
    c('    do {                           \\')
    c('        int err_ = (expr);         \\')
    c('        if (err_ != GR_OK)         \\')
    c('            return err_;           \\')
    c('    } while (0)')

    for s in structs:
        # ---- header: the type ----
        top = s.top()
        if s.is_message:
            what = f'{s.kind} {s.name}'
            if s.key is not None:
                what += f', API key {s.key}'
            if s.record is not None:
                what += f', metadata record type {s.record}'
            what += f', versions {s.versions}, flexible {s.flexible}'
        elif s.kind == 'struct':
            what = f'struct {s.name}'
        else:
            what = f'{s.name}, inside {top.name}'
        h(f'/* ---- {what} ---- */')
        if s.doc and s.kind != 'nested':
            for line in c_comment(s.doc):
                h(line)
        h(f'typedef struct {s.c} {{')
        if not s.fields:
            h('    char unused_; /* no fields */')
        for f in s.fields:
            ct = c_type(f)
            if f.is_array:
                emit_field_decl(h, f, f'{ct} *{f.c}', f'int32_t {f.c}_count')
            elif f.is_struct and not f.nullable.empty():
                emit_field_decl(h, f, f'{ct} {f.c}', f'bool {f.c}_present')
            else:
                emit_field_decl(h, f, f'{ct} {f.c}')
        h(f'}} {s.c};')
        h()
        h(f'void {s.c}_init({s.c} *m);')
        if s.is_message:
            h(f'int {s.c}_decode({s.c} *m, gr_reader *r, int16_t version, gr_arena *a);')
            h(f'int {s.c}_encode(const {s.c} *m, int16_t version, gr_writer *w);')
            h(f'size_t {s.c}_size(const {s.c} *m, int16_t version);')
        h()

        # ---- source: the functions ----
        public, static = funcs[s.c]
        c()
        c(f'/* ---- {what} ---- */')
        c()
        c.lines.extend(public[0].rstrip('\n').split('\n'))
        for name, body in static.items():
            if name in needed:
                c()
                c.lines.extend(body.rstrip('\n').split('\n'))
        for body in public[1:]:
            c()
            c.lines.extend(body.rstrip('\n').split('\n'))

    records = sorted(schema.records.values(), key=lambda b: b.record)
    if records:
        emit_record_decls(h, records)
    h('#endif')

    # ---- the API table and the dispatchers ----
    c()
    c('/* ---- APIs ---- */')
    c()
    c('static const gr_api_info apis[] = {')
    for b in apis:
        flex_min = -1 if b.flexible.empty() else b.flexible.lo
        c(f'    {{{api_enum(b)}, "{api_name(b)}", '
          f'{b.versions.lo}, {b.versions.hi}, {flex_min}}},')
    if not apis:
        c('    {-1, "none", 0, 0, -1},')
    c('};')
    c()
    c('const gr_api_info *gr_api_lookup(int16_t key)')
    c('{')
    if apis:
        c('    switch (key) {')
        for i, b in enumerate(apis):
            c(f'    case {api_enum(b)}: return &apis[{i}];')
        c('    default: return NULL;')
        c('    }')
    else:
        c('    (void)key;')
        c('    (void)apis;')
        c('    return NULL;')
    c('}')
    c()
    c('int16_t gr_request_header_version(int16_t key, int16_t version)')
    c('{')
    c('    const gr_api_info *api = gr_api_lookup(key);')
    c('    if (!api)')
    c('        return -1;')
    c('    return api->flexible_min >= 0 && version >= api->flexible_min ? 2 : 1;')
    c('}')
    c()
    c('int16_t gr_response_header_version(int16_t key, int16_t version)')
    c('{')
    c('    const gr_api_info *api = gr_api_lookup(key);')
    c('    if (!api)')
    c('        return -1;')
    if 18 in schema.requests:
        c('    if (key == GR_API_API_VERSIONS)')
        c('        return 0;')
    c('    return api->flexible_min >= 0 && version >= api->flexible_min ? 1 : 0;')
    c('}')
    for d, table in (('request', schema.requests), ('response', schema.responses)):
        blocks = sorted(table.values(), key=lambda b: b.key)
        c()
        c(f'int gr_{d}_decode(int16_t key, int16_t version, gr_reader *r, gr_arena *a, void **out)')
        c('{')
        c('    switch (key) {')
        for b in blocks:
            c(f'    case {api_enum(b)}: {{')
            c(f'        {b.c} *m = gr_arena_alloc(a, sizeof *m);')
            c('        if (!m)')
            c('            return GR_ERR_NOMEM;')
            c(f'        int err = {b.c}_decode(m, r, version, a);')
            c('        if (err == GR_OK)')
            c('            *out = m;')
            c('        return err;')
            c('    }')
        c('    default:')
        c('        (void)version, (void)r, (void)a, (void)out;')
        c('        return GR_ERR_VERSION;')
        c('    }')
        c('}')
        c()
        c(f'int gr_{d}_encode(int16_t key, int16_t version, const void *m, gr_writer *w)')
        c('{')
        c('    switch (key) {')
        for b in blocks:
            c(f'    case {api_enum(b)}: return {b.c}_encode(m, version, w);')
        c('    default:')
        c('        (void)version, (void)m, (void)w;')
        c('        return GR_ERR_VERSION;')
        c('    }')
        c('}')
        c()
        c(f'size_t gr_{d}_size(int16_t key, int16_t version, const void *m)')
        c('{')
        c('    switch (key) {')
        for b in blocks:
            c(f'    case {api_enum(b)}: return {b.c}_size(m, version);')
        c('    default:')
        c('        (void)version, (void)m;')
        c('        return 0;')
        c('    }')
        c('}')
    if records:
        emit_record_funcs(c, records)
    return h.text(), c.text()


# ---- the KRaft metadata log records ----

def record_enum(block):
    """TopicRecord -> GR_METADATA_RECORD_TOPIC."""
    base = block.name[:-len('Record')] if block.name.endswith('Record') else block.name
    return f'GR_METADATA_RECORD_{snake(base).upper()}'


def emit_record_decls(h, records):
    h('/*')
    h(' * ---- metadata log records ----')
    h(' * In the KRaft metadata log, and in metadata snapshots, the value of every')
    h(' * record is a frame: uvarint frame version (GR_METADATA_FRAME_VERSION),')
    h(' * uvarint record type (below), uvarint record version, then the record')
    h(' * body in that version. gr_metadata_record_* read and write whole frames.')
    h(' */')
    h('#define GR_METADATA_FRAME_VERSION 1')
    h()
    h('/* Record types of the metadata log records defined here. */')
    h('enum {')
    for b in records:
        h(f'    {record_enum(b)} = {b.record},')
    h('};')
    h()
    h('typedef struct {')
    h('    int16_t type;')
    h('    const char *name;')
    h('    int16_t min_version, max_version;')
    h('} gr_metadata_record_info;')
    h()
    h('/* The record type with this number, or NULL if it is not defined. */')
    h('const gr_metadata_record_info *gr_metadata_record_lookup(int16_t type);')
    h('/*')
    h(' * Decodes one framed record: sets *type and *version, allocates the record')
    h(' * struct of that type from the arena and sets *out (only on success). A')
    h(' * frame version other than 1 is GR_ERR_MALFORMED; an unknown type or a')
    h(' * version the type does not have is GR_ERR_VERSION. Like the message')
    h(' * decoders it need not consume all of r: the caller checks that the')
    h(' * record value ends where the body does.')
    h(' */')
    h('int gr_metadata_record_decode(gr_reader *r, gr_arena *a, int16_t *type, int16_t *version,')
    h('                              void **out);')
    h('/* Writes the frame and the body; m points to the record struct of type. */')
    h('int gr_metadata_record_encode(int16_t type, int16_t version, const void *m, gr_writer *w);')
    h('/* Bytes gr_metadata_record_encode writes (0 for an unknown type or version). */')
    h('size_t gr_metadata_record_size(int16_t type, int16_t version, const void *m);')
    h()


def emit_record_funcs(c, records):
    c()
    c('/* ---- metadata log records ---- */')
    c()
    c('static const gr_metadata_record_info metadata_records[] = {')
    for b in records:
        c(f'    {{{record_enum(b)}, "{b.name}", {b.versions.lo}, {b.versions.hi}}},')
    c('};')
    c()
    c('const gr_metadata_record_info *gr_metadata_record_lookup(int16_t type)')
    c('{')
    c('    switch (type) {')
    for i, b in enumerate(records):
        c(f'    case {record_enum(b)}: return &metadata_records[{i}];')
    c('    default: return NULL;')
    c('    }')
    c('}')
    c()
    c('static size_t metadata_frame_size(int16_t type, int16_t version)')
    c('{')
    c('    return gr_uvarint_size(GR_METADATA_FRAME_VERSION) + gr_uvarint_size((uint32_t)type) +')
    c('           gr_uvarint_size((uint32_t)version);')
    c('}')
    c()
    c('int gr_metadata_record_decode(gr_reader *r, gr_arena *a, int16_t *type, int16_t *version,')
    c('                              void **out)')
    c('{')
    c('    uint32_t frame, t, v;')
    c('    TRY(gr_read_uvarint(r, &frame));')
    c('    TRY(gr_read_uvarint(r, &t));')
    c('    TRY(gr_read_uvarint(r, &v));')
    c('    if (frame != GR_METADATA_FRAME_VERSION)')
    c('        return GR_ERR_MALFORMED;')
    c('    if (t > INT16_MAX || v > INT16_MAX)')
    c('        return GR_ERR_VERSION;')
    c('    *type = (int16_t)t;')
    c('    *version = (int16_t)v;')
    c('    switch (*type) {')
    for b in records:
        c(f'    case {record_enum(b)}: {{')
        c(f'        {b.c} *m = gr_arena_alloc(a, sizeof *m);')
        c('        if (!m)')
        c('            return GR_ERR_NOMEM;')
        c(f'        int err = {b.c}_decode(m, r, *version, a);')
        c('        if (err == GR_OK)')
        c('            *out = m;')
        c('        return err;')
        c('    }')
    c('    default:')
    c('        return GR_ERR_VERSION;')
    c('    }')
    c('}')
    c()
    c('int gr_metadata_record_encode(int16_t type, int16_t version, const void *m, gr_writer *w)')
    c('{')
    c('    const gr_metadata_record_info *info = gr_metadata_record_lookup(type);')
    c('    if (!info || version < info->min_version || version > info->max_version)')
    c('        return GR_ERR_VERSION;')
    c('    size_t start = w->len;')
    c('    gr_write_uvarint(w, GR_METADATA_FRAME_VERSION);')
    c('    gr_write_uvarint(w, (uint32_t)type);')
    c('    gr_write_uvarint(w, (uint32_t)version);')
    c('    int err;')
    c('    switch (type) {')
    for b in records:
        c(f'    case {record_enum(b)}: err = {b.c}_encode(m, version, w); break;')
    c('    default: err = GR_ERR_VERSION; break;')
    c('    }')
    c('    if (err != GR_OK && w->err == GR_OK)')
    c('        w->len = start; /* refused: leave nothing half-written */')
    c('    return err;')
    c('}')
    c()
    c('size_t gr_metadata_record_size(int16_t type, int16_t version, const void *m)')
    c('{')
    c('    const gr_metadata_record_info *info = gr_metadata_record_lookup(type);')
    c('    if (!info || version < info->min_version || version > info->max_version)')
    c('        return 0;')
    c('    switch (type) {')
    for b in records:
        c(f'    case {record_enum(b)}: return metadata_frame_size(type, version) + {b.c}_size(m, version);')
    c('    default: return 0;')
    c('    }')
    c('}')


# ---- test support: random messages and a table of every message type ----

def fill_value(o, f, lv):
    """Statements setting one value (a field or an array item) at random."""
    t = f.type
    if f.is_struct:
        o(f'{f.struct.c}_fill_random(&{lv}, version, a, rng);')
    elif t == 'bool':
        o(f'{lv} = (gr_test_rand(rng) & 1) != 0;')
    elif t == 'float64':
        o(f'{lv} = (double)(int32_t)gr_test_rand(rng) / 16.0;')
    elif t == 'uuid':
        o(f'test_uuid(&{lv}, rng);')
    elif t == 'string':
        o(f'{lv} = test_str(a, rng);')
    elif t in ('bytes', 'records'):
        o(f'{lv} = test_bytes(a, rng);')
    else:
        o(f'{lv} = ({c_type(f)})test_int(rng);')


def emit_fill(o, s):
    g = StructGen(s)
    ctx = g.ctx
    o(f'void {s.c}_fill_random({s.c} *m, int16_t version, gr_arena *a, uint64_t *rng)')
    o('{')
    o.indent()
    o('(void)version, (void)a, (void)rng;')
    o(f'{s.c}_init(m);')
    for f in s.fields:
        present = f.versions.cond(ctx)
        if present == 'false':
            continue
        lv = f'm->{f.c}'

        def body(out, f=f, lv=lv):
            tagged = f.tagged_versions().cond(f.versions & ctx)
            if tagged != 'false':
                # A tagged field stays at its default half of the time.
                cond = 'gr_test_rand(rng) & 1' if tagged == 'true' else \
                    f'!({tagged}) || (gr_test_rand(rng) & 1)'
                out(f'if ({cond}) {{')
                out.indent()
            nul = f.nullable.cond(f.versions & ctx)
            if nul != 'false':
                c = 'gr_test_rand(rng) % 4 == 0'
                out(f'if ({c if nul == "true" else f"({nul}) && {c}"}) {{')
                out.indent()
                if f.is_array:
                    out(f'{lv} = NULL;')
                    out(f'{lv}_count = -1;')
                elif f.is_struct:
                    out(f'{lv}_present = false;')
                elif f.type == 'string':
                    out(f'{lv} = GR_STR_NULL;')
                else:
                    out(f'{lv} = GR_BYTES_NULL;')
                out.dedent()
                out('} else {')
                out.indent()
            if f.is_array:
                out(f'int32_t n = (int32_t)(gr_test_rand(rng) % 4);')
                out(f'{lv} = gr_arena_calloc(a, (size_t)n, sizeof *{lv});')
                out(f'{lv}_count = {lv} ? n : 0;')
                out(f'for (int32_t i = 0; i < {lv}_count; i++) {{')
                out.indent()
                fill_value(out, f, f'{lv}[i]')
                out.dedent()
                out('}')
            else:
                fill_value(out, f, lv)
                if f.is_struct and not f.nullable.empty():
                    out(f'{lv}_present = true;')
            if nul != 'false':
                out.dedent()
                out('}')
            if tagged != 'false':
                out.dedent()
                out('}')

        o(f'/* {f.name} */')
        if present == 'true':
            o('{')
            o.indent()
            body(o)
            o.dedent()
            o('}')
        else:
            o(f'if ({present}) {{')
            o.indent()
            body(o)
            o.dedent()
            o('}')
    o.dedent()
    o('}')


def generate_test(schema):
    structs = schema.all_structs()
    messages = [b for b in schema.blocks if b.is_message]
    banner = [
        '/*',
        ' * Generated from proto/schema by proto/gen.py. Do not edit.',
        ' * Test support for the codec of proto/messages.h: random messages and a',
        ' * table of every message type. Linked into the tests, not the library.',
        ' */',
    ]
    h = Out()
    for line in banner:
        h(line)
    h('#ifndef GR_PROTO_MESSAGES_TEST_H')
    h('#define GR_PROTO_MESSAGES_TEST_H')
    h()
    h('#include <stddef.h>')
    h('#include <stdint.h>')
    h()
    h('#include "common/buf.h"')
    h('#include "proto/messages.h"')
    h()
    h('/* The next number of a deterministic generator (splitmix64) seeded by *state. */')
    h('uint64_t gr_test_rand(uint64_t *state);')
    h()
    h('/*')
    h(' * X_fill_random(m, version, a, rng) initializes m, then gives every field')
    h(' * that version carries a random value: integers of every magnitude, strings')
    h(' * and bytes of 0..20 bytes, arrays of 0..3 items, null a quarter of the time')
    h(' * where the version allows null, and tagged fields left at their default half')
    h(' * of the time. Strings, bytes and arrays are allocated from a.')
    h(' */')
    for st in structs:
        h(f'void {st.c}_fill_random({st.c} *m, int16_t version, gr_arena *a, uint64_t *rng);')
    h()
    h('/* Every message type (requests, responses, headers and data), uniformly. */')
    h('typedef struct {')
    h('    const char *name;')
    h('    const char *kind; /* "request", "response", "header" or "data" */')
    h('    int16_t key;      /* the API key or metadata record type; -1: none */')
    h('    int16_t min_version, max_version;')
    h('    size_t struct_size;')
    h('    void (*fill_random)(void *m, int16_t version, gr_arena *a, uint64_t *rng);')
    h('    int (*decode)(void *m, gr_reader *r, int16_t version, gr_arena *a);')
    h('    int (*encode)(const void *m, int16_t version, gr_writer *w);')
    h('    size_t (*size)(const void *m, int16_t version);')
    h('} gr_message_type;')
    h()
    h('extern const gr_message_type gr_message_types[];')
    h('extern const size_t gr_message_types_count;')
    h()
    h('#endif')

    c = Out()
    for line in banner:
        c(line)
    c('#include "proto/messages_test.h"')
    c()
    c('#include <string.h>')
    c()
    c('uint64_t gr_test_rand(uint64_t *state)')
    c('{')
    c('    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));')
    c('    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);')
    c('    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);')
    c('    return z ^ (z >> 31);')
    c('}')
    helpers = {
        'test_int': [
            '/* Zero, -1, small, 16-bit and full-width values, so every varint length shows up. */',
            'static uint64_t test_int(uint64_t *rng)',
            '{',
            '    uint64_t r = gr_test_rand(rng);',
            '    switch (r & 7) {',
            '    case 0: return 0;',
            '    case 1: return UINT64_MAX;',
            '    case 2: return (r >> 8) & 0x7f;',
            '    case 3: return (r >> 8) & 0xffff;',
            '    default: return gr_test_rand(rng);',
            '    }',
            '}',
        ],
        'test_uuid': [
            'static void test_uuid(gr_uuid *u, uint64_t *rng)',
            '{',
            '    memset(u, 0, sizeof *u);',
            '    if (gr_test_rand(rng) % 4 == 0)',
            '        return; /* the zero uuid is common on the wire */',
            '    for (size_t i = 0; i < sizeof u->b; i++)',
            '        u->b[i] = (uint8_t)gr_test_rand(rng);',
            '}',
        ],
        'test_str': [
            'static gr_str test_str(gr_arena *a, uint64_t *rng)',
            '{',
            '    int32_t len = (int32_t)(gr_test_rand(rng) % 21);',
            '    char *p = gr_arena_alloc(a, (size_t)len + 1);',
            '    if (!p)',
            '        return (gr_str){NULL, 0};',
            '    for (int32_t i = 0; i < len; i++)',
            "        p[i] = (char)('a' + gr_test_rand(rng) % 26);",
            '    return (gr_str){p, len};',
            '}',
        ],
        'test_bytes': [
            'static gr_bytes test_bytes(gr_arena *a, uint64_t *rng)',
            '{',
            '    int32_t len = (int32_t)(gr_test_rand(rng) % 21);',
            '    uint8_t *p = gr_arena_alloc(a, (size_t)len + 1);',
            '    if (!p)',
            '        return (gr_bytes){NULL, 0};',
            '    for (int32_t i = 0; i < len; i++)',
            '        p[i] = (uint8_t)gr_test_rand(rng);',
            '    return (gr_bytes){p, len};',
            '}',
        ],
    }
    used = set()
    for st in structs:
        for f in st.fields:
            if not f.is_struct:
                used.add({'bool': None, 'float64': None, 'uuid': 'test_uuid', 'string': 'test_str',
                          'bytes': 'test_bytes', 'records': 'test_bytes'}.get(f.type, 'test_int'))
    for name, lines in helpers.items():
        if name in used:  # no unused static functions
            c()
            for line in lines:
                c(line)
    for st in structs:
        c()
        emit_fill(c, st)
    for b in messages:
        c()
        c(f'static void {b.c}_fill_any(void *m, int16_t v, gr_arena *a, uint64_t *rng)')
        c('{')
        c(f'    {b.c}_fill_random(m, v, a, rng);')
        c('}')
        c(f'static int {b.c}_decode_any(void *m, gr_reader *r, int16_t v, gr_arena *a)')
        c('{')
        c(f'    return {b.c}_decode(m, r, v, a);')
        c('}')
        c(f'static int {b.c}_encode_any(const void *m, int16_t v, gr_writer *w)')
        c('{')
        c(f'    return {b.c}_encode(m, v, w);')
        c('}')
        c(f'static size_t {b.c}_size_any(const void *m, int16_t v)')
        c('{')
        c(f'    return {b.c}_size(m, v);')
        c('}')
    c()
    c('const gr_message_type gr_message_types[] = {')
    for b in messages:
        key = b.key if b.key is not None else b.record if b.record is not None else -1
        c(f'    {{"{b.name}", "{b.kind}", {key}, {b.versions.lo}, {b.versions.hi}, sizeof({b.c}),')
        c(f'     {b.c}_fill_any, {b.c}_decode_any, {b.c}_encode_any, {b.c}_size_any}},')
    c('};')
    c()
    c('const size_t gr_message_types_count = sizeof gr_message_types / sizeof gr_message_types[0];')
    return h.text(), c.text()


def main():
    ap = argparse.ArgumentParser(description='Generate the Kafka protocol codec.')
    ap.add_argument('--out-dir', required=True, help='where messages.h and messages.c go')
    ap.add_argument('schemas', nargs='+', help='proto/schema/*.def files')
    args = ap.parse_args()
    schema = Schema()
    try:
        for path in args.schemas:
            schema.parse_file(path)
        schema.resolve()
        header, source = generate(schema, args.schemas)
        test_header, test_source = generate_test(schema)
    except SchemaError as e:
        print(f'gen.py: {e}', file=sys.stderr)
        return 1
    except OSError as e:
        print(f'gen.py: {e}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    for name, text in (('messages.h', header), ('messages.c', source),
                       ('messages_test.h', test_header), ('messages_test.c', test_source)):
        path = os.path.join(args.out_dir, name)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
