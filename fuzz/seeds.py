#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small inputs taken from
the unit tests' cases). Run from the repository root; the files are
committed, so this only needs running when the seeds change."""
import base64, hashlib, hmac, json, os, re, shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
SECRET = b'zoosync-fuzz-secret-0123456789abcdef'  # fuzz_auth.c's secret


def write(target, items):
    d = os.path.join(ROOT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, b in enumerate(items):
        if isinstance(b, str):
            b = b.encode('utf-8', 'surrogatepass')
        with open(os.path.join(d, 'seed-%03d' % i), 'wb') as f:
            f.write(b)


# ---- jraw (tests/unit/test_jraw.c) ----
jraw = ['0.1', ' 3.14159 ', '1e2', '-0', '123456789012345678901234567890', '[1.5e300, 2E-7, -0.0]',
        '{ "a" : [ 1 , 2 ] ,\n\t"b" : { } , "c":[ ] }', '  true ', 'null', '"x y"',
        '"\\u00e9\\u4e2d"', '"\\/\\"\\\\"', '"\\ud83d\\ude00"', '"a\\u0000b\\u001f\\n"', '"\u00e9"',
        '', '{', '[1,]', '{"a":1,}', '{"a" 1}', '01', '1.', '1e', '+1', 'tru', '[1] 2', '"abc',
        '"a\nb"', '"\\x"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', b'"\xc0\xaf"', b'"\xed\xa0\x80"',
        b'"\xff"', b'"\xe4\xb8"', b'[1,\0 2]', '{"a":1,"a":2}', '[{"x":{},"y":[{"k":1,"k":1}]}]',
        '{"\\u0061":1,"a":2}', '{"a":{"a":1},"b":[{"a":1},{"a":2}]}', '{"ab":1,"a":2,"b":3}',
        '{\n  "a": tru\n}', '[' * 20 + ']' * 20, '[' * 513 + ']' * 513,
        '{"client":"c","mutations":[{"id":1,"value":{"a":[1,"]"]}},{"id":-2}],"x":"a\\"b"}',
        '9223372036854775807', '9223372036854775808', '{"k\\u0000":1}', '"\\u001f\\b\\f\\t\\r"']
write('jraw', jraw)

# ---- push (the README's and the integration tests' bodies) ----
def m(**kw):
    return kw
push = [
    {"client": "laptop", "mutations": [
        m(id=1, key="todo:1", op="put", value={"title": "milk"}, base=0),
        m(id=2, key="todo:2", op="put", value={"title": "eggs"}, base=0)]},
    {"client": "phone", "mutations": [m(id=1, key="todo:1", op="put", value={"title": "oat milk"}, base=0)]},
    {"client": "laptop", "mutations": [m(id=3, key="todo:2", op="delete", base=1)]},
    {"client": "c", "mutations": []},
    {"client": "c", "mutations": [m(id=1, key="a", op="put", value=1, tx="t1"),
                                  m(id=2, key="b", op="delete", tx="t1"),
                                  m(id=3, key="c", op="put", value=None)]},
    {"client": "c", "mutations": [m(id=1, key="a", op="put", value=1, tx="t"),
                                  m(id=2, key="b", op="put", value=2, tx="u"),
                                  m(id=3, key="c", op="put", value=3, tx="t")]},
    {"client": "c", "mutations": [m(id=2, key="a", op="put", value=1), m(id=1, key="b", op="put", value=1)]},
    {"client": "c", "mutations": [m(id=1, key="", op="put", value=1)]},
    {"client": "c", "mutations": [m(id=1, key="k", op="put")]},
    {"client": "c", "mutations": [m(id=1, key="k", op="delete", value=1)]},
    {"client": "c", "mutations": [m(id=1, key="k", op="upsert", value=1)]},
    {"client": "c", "mutations": [m(id=1, key="k", op="put", value="x" * 600)]},
    {"client": "c", "mutations": [m(id=i, key="k%d" % i, op="put", value="v" * 100, tx="big") for i in range(1, 20)]},
    {"client": "c", "mutations": [m(id=1, key="k", op="put", value=1, base=-1)]},
    {"client": "c", "mutations": [m(id=1, key="k", op="put", value=1, extra=1)]},
    {"client": "bad client", "mutations": []},
    {"client": "c"},
    {"mutations": []},
    [1, 2],
]
push = [json.dumps(p) for p in push] + [
    '{"client":"c","mutations":[{"id":1,"key":"\\u00e9\\ud83d\\ude00","op":"put","value":{"a":[1,2.5e3,null,true]}}]}',
    '{"client":"c","client":"d","mutations":[]}',
    '{"client":"c","mutations":[{"id":1,"id":2,"key":"k","op":"put","value":1}]}',
    '{"client":"c","mutations":[{"id":1,"key":"a\\u0000b","op":"put","value":1}]}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"put","value":1,"tx":""}]}',
    '{"client":"c","mutations":[{"id":99999999999999999999,"key":"k","op":"put","value":1}]}',
    '{"client":"c","mutations":[{"id":1.0,"key":"k","op":"put","value":1}]}',
    '{"client":"c","mutations":[{"id":1,"key":"k","op":"delete","base":3,"tx":"t"}]}',
    '{"client":"c\\u0000","mutations":[]}', 'not json', '',
]
write('push', push)

# ---- layout (tests/unit/test_layout.c) ----
src = open(os.path.join(ROOT, '..', '..', 'tests', 'unit', 'test_layout.c'), encoding='latin-1').read()
lits = sorted(set(re.findall(r'"((?:[^"\\]|\\.)*)"', src)))
layout = []
for s in lits:
    if '%s' in s or '%%' in s or 'assert' in s or ' ' * 2 in s:
        continue
    try:
        b = s.encode('latin-1').decode('unicode_escape').encode('latin-1')
    except Exception:
        continue
    layout.append(b)
layout += [b'todo:1', b'a/b', b'100%', b'.', b'..', b'%2E', b'%2E%2E', b'x' * 1024, b'x' * 1025,
           '\u00e9\u4e2d\U0001F600'.encode(), b'A-Za-z_09', b'a' * 64, b'a' * 65]
write('layout', layout[:60])

# ---- cursor (tests/unit/test_cursor.c) ----
cursor = ['0' * 40, '0000000100000002af63dc4c8601ec8c00000007', 'f' * 40, '0000000000000004ffffffffffffffffffffffff',
          '0000000000000006b60c68723b7972dc00000001', '0' * 39, '0' * 41, '0' * 39 + 'A', 'ABCDEF' + '0' * 34,
          '0' * 15 + 'g' + '0' * 24, '0x' + '0' * 38, '-' + '0' * 39, ' ' + '0' * 39, '0' * 39 + ' ',
          '0' * 37 + '\n00', '', bytes(range(40)), bytes(range(255, 215, -1)), b'\xff' * 40 + b'\x00' * 20]
write('cursor', cursor)

# ---- auth: mode 0 raw tokens, mode 1 "header\0payload" signed here, mode 2 "sub\0scope" ----
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=')
def signed(h, p):
    t = b64(h.encode()) + b'.' + b64(p.encode())
    return t + b'.' + b64(hmac.new(SECRET, t, hashlib.sha256).digest())
auth = []
for h, p in [('{"alg":"HS256","typ":"JWT"}', '{"exp":1700003600,"sub":"dan","scope":"todos:write notes:read"}'),
             ('{"alg":"HS256"}', '{"exp":1700003600,"iat":1700000000,"sub":"a","aud":"zoosync","iss":"https://idp.example","scope":"admin"}'),
             ('{"alg":"HS256"}', '{"exp":1700003600,"aud":["x","zoosync"],"iss":"https://idp.example","scope":"*:read"}'),
             ('{"alg":"none"}', '{"exp":1700003600}'), ('{"alg":"RS256"}', '{"exp":1700003600}'),
             ('{"alg":"HS256","crit":["b64"],"b64":false}', '{"exp":1800000000}'),
             ('{"alg":"HS256","alg":"none"}', '{"exp":1800000000}'), ('{"alg":256}', '{"exp":1800000000}')]:
    auth.append(b'\x00' + signed(h, p))
    auth.append(b'\x01' + h.encode() + b'\x00' + p.encode())
for p in ['{"exp":1700003600,"sub":"dan","scope":"todos:write notes:read *:read admin"}', '{"exp":1e300}',
          '{"exp":1.5}', '{"exp":"1800000000"}', '{"exp":1699999999}', '{"exp":1800000000,"nbf":1800000000}',
          '{"exp":1800000000,"exp":1}', '[1800000000]', '{"exp":1800000000} x',
          '{"exp":1800000000,"scope":["admin"]}', '{"exp":1800000000,"sub":7}',
          '{"exp":253402300799,"iat":0}', '{"exp":253402300800}', '{"exp":-1}',
          '{"exp":1700001000,"iat":1700000000,"aud":"zoosync","iss":"https://idp.example","scope":"a:b:write x:read"}']:
    auth.append(b'\x01' + p.encode())
auth += [b'\x00', b'\x00a.b.c', b'\x00..', b'\x00a.b.', b'\x00a.b.c.d', b'\x00eyJhbGciOiJIUzI1NiJ9.e30.x',
         b'\x02dan\x00todos:write notes:read', b'\x02\x00admin', b'\x02x\x00*:write  a:read b:admin c:write:read',
         b'\x02x\x00' + b's' * 65 + b':read', b'\x02x\x00:read *:x']
# prefix scopes (v1.1): {sub}, percent-decoding, what grants nothing
auth += [b'\x02alice\x00notes:write:users/{sub}/ notes:read:shared/ *:read:pub/',
         b'\x02zo\xc3\xab\x00s:write:u%2F{sub}%2F s:read:%7Bsub%7D/ s:read:{sub}/{sub}/',
         b'\x02\x00s:write:users/{sub}/ s:read:%zz s:read:%00 s:read:%C3 s:read: a:read:%C3%A9/ a:read:a a:read:ab']
write('auth', auth)

# ---- route: paths, methods, If-Match and limit values ----
route = ['/v1/stores', '/v1/stores/todos', '/v1/stores/todos/push', '/v1/stores/todos/changes',
         '/v1/stores/todos/events', '/v1/stores/todos/records/todo:1', '/v1/stores/todos/records/a%2Fb%00c',
         '/v1/stores/todos%00other/records/x', '/v1/stores/%zz', '/v1/stores/to%2', '/v1/stores/todos/records/%',
         '/v1/stores/todos/records/', '/v1/stores/todos/other', '/v1/storesx', '/v1', '/healthz', '/',
         '/v1/stores/t/records/%C3%A9%F0%9F%98%80', '/v1/stores/t/records/%2E%2E', 'GET', 'PUT', 'DELETE',
         'POST', 'HEAD', 'OPTIONS', 'GET, PUT', 'get', '"3"', '"0"', '"-1"', '" 3"', '"+3"', '"03"', '"3',
         '"9223372036854775807"', '"9223372036854775808"', '*', '1', '10000', '10001', '0', '+5', ' 5',
         '\t5', '5 ', '1e3', 'abc%41%4', '%41%42%43', 'a+b%20c']
write('route', route)

# ---- jute: the frames recorded from ZooKeeper 3.8 in tests/unit/test_zkw.c ----
src = open(os.path.join(ROOT, '..', '..', 'tests', 'unit', 'test_zkw.c')).read()
frames = []
for name, lit in re.findall(r'static const char (\w+)\[\] = "((?:\\x[0-9a-f]{2})*)";', src):
    frames.append(bytes(int(h, 16) for h in re.findall(r'\\x([0-9a-f]{2})', lit)))
import struct
def I(v): return struct.pack('>i', v)
def L(v): return struct.pack('>q', v)
def buf(b): return I(len(b)) + b
stat = L(3) + L(4) + L(0) + L(0) + I(1) + I(0) + I(0) + L(0) + I(7) + I(0) + L(5)
hdr = I(4) + L(9) + I(0)
frames += [
    hdr + I(4) + b'\x00' + I(0) + buf(b'{"conflict":"lww","maxValueBytes":10,"horizon":"0000000000000004ffffffffffffffffffffffff"}') + stat + I(-1) + b'\x01' + I(-1),
    hdr + I(8) + b'\x00' + I(0) + I(3) + buf(b'todo:1') + buf(b'a%2Fb') + buf(b'%2E%2E') + I(-1) + b'\x01' + I(-1),
    hdr + I(-1) + b'\x00' + I(-101) + I(-101) + I(-1) + b'\x01' + I(-1),
    hdr + I(4) + b'\x00' + I(0) + buf(b'{ "pretty" : [1, 2] }') + stat + I(4) + b'\x00' + I(0) + I(-1) + stat + I(-1) + b'\x01' + I(-1),
    hdr + I(8) + b'\x00' + I(0) + I(0x7fffffff) + buf(b'x'),
    I(-1) + L(-1) + I(0) + I(3) + I(3) + buf(b'/zoosync/stores/todos/r/2dc/todo:1'),
    I(-1) + L(-1) + I(0) + I(4) + I(3) + buf(b''),
    I(0) + I(0) + L(0) + I(0),
    I(0) + I(10000) + L(1) + buf(b'\x00' * 16),
]
write('jute', frames)
# ---- schema (tests/unit/test_schema.c and the draft-07 suite's shapes):
# a schema, a NUL byte, a value ----
def sv(schema, value):
    return schema.encode() + b'\0' + value.encode()
schema = [
    sv('{"type":"object","required":["name"],"properties":{"name":{"type":"string","minLength":1,"pattern":"^n[0-9]+$"},"n":{"multipleOf":0.1,"maximum":18446744073709551615},"tags":{"type":"array","items":{"type":"string"},"uniqueItems":true,"maxItems":3}},"additionalProperties":false}',
       '{"name":"n1","n":0.3,"tags":["a","b",1]}'),
    sv('{"items":[{"type":"integer"},{"$ref":"#/items/0"}],"additionalItems":false,"contains":{"const":1}}', '[1,1.0,2]'),
    sv('{"definitions":{"a":{"type":"integer"},"b":{"$ref":"#/definitions/a"}},"$ref":"#/definitions/b"}', '1e2'),
    sv('{"properties":{"foo":{"$ref":"#"}},"additionalProperties":false}', '{"foo":{"foo":{"bar":1}}}'),
    sv('{"$id":"http://example.com/a/root.json","properties":{"p":{"$ref":"item.json"}},"definitions":{"i":{"$id":"item.json","type":"object"}}}', '{"p":[]}'),
    sv('{"allOf":[{"$ref":"#foo"}],"definitions":{"A":{"$id":"#foo","type":"integer"}}}', '"x"'),
    sv('{"tilda~field":{"type":"integer"},"properties":{"t":{"$ref":"#/tilda~0field"},"p":{"$ref":"#/percent%25field"}},"percent%field":true}', '{"t":1.5}'),
    sv('{"$ref":"http://json-schema.org/draft-07/schema#"}', '{"type":"strin","minLength":-1,"items":[{"pattern":"("}]}'),
    sv('{"anyOf":[{"type":"string"},{"minimum":2}],"oneOf":[{"multipleOf":2},{"multipleOf":3}],"not":{"const":6}}', '6'),
    sv('{"if":{"exclusiveMaximum":0},"then":{"minimum":-10},"else":{"multipleOf":2}}', '-100'),
    sv('{"dependencies":{"a":["b"],"c":{"required":["d"]}},"propertyNames":{"maxLength":3},"minProperties":1,"maxProperties":4}', '{"a":1,"c":2,"long name":3}'),
    sv('{"patternProperties":{"^x-":{"type":"string"},"\\u00e9+":false},"additionalProperties":{"type":"number"}}', '{"x-a":"s","\u00e9\u00e9":1,"y":"z"}'),
    sv('{"enum":[1.10,{"a":[null]},"x"],"const":{"a":[null]}}', '{"a":[null]}'),
    sv('{"type":["integer","null"],"minimum":1e400,"exclusiveMinimum":-1e-400}', '123456789012345678901234567890123456789'),
    sv('{"multipleOf":123456789012345678901234567890}', '12193263113702179522618422492992648986186782045407430'),
    sv('{"multipleOf":7}', '1e1000000'),
    sv('{"pattern":"^(a+)+$"}', '"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"'),
    sv('{"maxLength":2,"minLength":2}', '"\\u00e9\\ud83d\\ude00"'),
    sv('{"$ref":"#"}', '1'),
    sv('{"anyOf":[{"$ref":"#"}]}', '1'),
    sv('{"$defs":{}}', '1'),
    sv('{"properties":{"$defs":{"prefixItems":1}}}', '{}'),
    sv('{"$schema":"https://json-schema.org/draft/2020-12/schema"}', '1'),
    sv('{"$ref":"other.json#/x"}', '1'),
    sv('true', '[[[[[[[[[[]]]]]]]]]]'),
    sv('false', 'null'),
    sv('{"items":{"items":{"items":{"type":"null"}}}}', '[[[null,1]]]'),
    sv('{"uniqueItems":true}', '[{"a":1,"b":2},{"b":2.0,"a":1}]'),
    '{"type":"object","properties":{"a":{"type":"string"}}}',
    '{"minimum":0}\0 [ 1 , -1e-9 ]\n',
    '{"type":"string"}\0"\\ud800"',
]
write('schema', schema)

# ---- jwks (fuzz_jwks.c): key sets, keys made once with node:crypto ----
RSA_JWK = {"kty": "RSA", "n": "u15ngNkTj0uPXAXL9Vu82D0pKyOUd7PgVp_gU1c6Rc8pVY1dHaakti8557jMnVYxH05XTs4fQQ0TQL4GOLAb-tbry2_f5PJrZrOsFtHGzlZfQQGyBxH0AtUqtfa7qV81FSwWN-NF_J7vrkEwhvIAPcRy_G-ehG5jSYQKo0m6uYwMmw2DMmJE2axZsLq7pFRn83EXYhS1oyYuCh5KX5lkcjZZuAx_LxJTyh9qieVXgd4Yk3hEWA40JNpQrQTyBs9FJ2jq9Iz53DA17hDmLVsmUUTgxoYDIbkHXr8AtyIFdZqXj_u-0Epj20gZRs9JDXVCmXJe6EciUPcd5sVcpUErVw", "e": "AQAB"}
EC_JWK = {"kty": "EC", "x": "9-CPCuaH8WOckLHhUwS9kbtFpqtzeg99P6gR__lmpYU", "y": "mcpwBMHvTqH0JZTghuWdMs9s9o_9x7d8TXi9waIWkD4", "crv": "P-256"}
OCT_K = base64.urlsafe_b64encode(b'k' * 32).rstrip(b'=').decode()
def ks(*keys):
    return json.dumps({"keys": list(keys)})
jwks = [
    ks(RSA_JWK), ks(EC_JWK), ks({"kty": "oct", "k": OCT_K}),
    ks(dict(RSA_JWK, kid="r1", use="sig", alg="RS256"), dict(EC_JWK, kid="e1"), {"kty": "oct", "kid": "h1", "k": OCT_K}),
    ks(dict(RSA_JWK, kid="a"), dict(EC_JWK, kid="a")), ks(RSA_JWK, EC_JWK), ks(dict(EC_JWK, crv="P-384")),
    ks(dict(EC_JWK, x=EC_JWK["y"])), ks({"kty": "oct", "k": "YQ"}), ks(dict(RSA_JWK, e="AA")), ks(dict(RSA_JWK, use="enc")),
    ks({"kty": "OKP", "crv": "Ed25519", "x": "AA"}), '{"keys":[]}', '{"keys":{}}', '[]', '', '{"keys":[1,"a",null]}',
    ks(dict(RSA_JWK, kid="")), ks(dict(RSA_JWK, alg="HS256")), ks(dict(EC_JWK, x=EC_JWK["x"] + "=")),
]
write('jwks', jwks)

print({t: len(os.listdir(os.path.join(ROOT, t))) for t in os.listdir(ROOT)})
