// Checks real gateway responses against docs/openapi.yaml: the status must
// be one the operation describes, its required headers present and valid,
// its Content-Type one the response lists and its body valid against the
// response's schema (JSON Schema 2020-12, as OpenAPI 3.1 uses, by ajv).
//
//   import { loadOpenApi } from '../lib/openapi.mjs';
//   const oa = loadOpenApi();
//   oa.assertResponse('GET', '/v1/stores/todos', res);   // res from http.mjs request()
//   oa.assertRequestBody('POST', '/v1/stores/todos/push', body);
//   oa.assertSchema('ChangeEventData', data, 'event 3');
//
// A mismatch throws an AssertionError naming the method, the path, the
// status and every problem found. oa.seen records each (operation, status)
// checked, for a coverage report.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { REPO } from './harness.mjs';

export const OPENAPI_FILE = path.join(REPO, 'docs', 'openapi.yaml');
const SCHEMAS_ID = 'https://zoosync.invalid/openapi/schemas';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** JSON pointer lookup inside the document ('#/components/...'). */
function pointer(doc, ref) {
  assert.ok(ref.startsWith('#/'), `only local $refs are supported: ${ref}`);
  let o = doc;
  for (const part of ref.slice(2).split('/')) {
    o = o?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    assert.ok(o !== undefined, `unresolved $ref ${ref}`);
  }
  return o;
}

/** Follows $ref chains of non-schema objects (responses, headers, parameters). */
function deref(doc, o) {
  while (o && typeof o === 'object' && typeof o.$ref === 'string') o = pointer(doc, o.$ref);
  return o;
}

/** A copy of a schema whose component $refs point at the $defs ajv knows. */
function rewriteRefs(x) {
  if (Array.isArray(x)) return x.map(rewriteRefs);
  if (!x || typeof x !== 'object') return x;
  const out = {};
  for (const [k, v] of Object.entries(x)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
      out[k] = `${SCHEMAS_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`;
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

function templateRegex(template) {
  // {key} is the whole rest of the path (a raw '/' included); other
  // parameters are one segment.
  const re = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
    .replace(/\{key\}/g, '(.+)')
    .replace(/\{[^}]+\}/g, '([^/]+)');
  return new RegExp(`^${re}$`);
}

function mediaBase(ct) {
  return String(ct || '').split(';')[0].trim().toLowerCase();
}

export function loadOpenApi(file = OPENAPI_FILE) {
  const doc = YAML.parse(readFileSync(file, 'utf8'));
  assert.match(String(doc.openapi), /^3\.1\./, 'docs/openapi.yaml must be OpenAPI 3.1');
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false });
  addFormats(ajv);
  // OpenAPI's own schema keywords: annotations here.
  for (const keyword of ['discriminator', 'example', 'xml', 'externalDocs']) ajv.addKeyword({ keyword });
  ajv.addSchema({ $id: SCHEMAS_ID, $defs: rewriteRefs(doc.components?.schemas || {}) });
  const compiled = new Map();
  const compile = (schema) => {
    const key = JSON.stringify(schema);
    let v = compiled.get(key);
    if (!v) { v = ajv.compile(rewriteRefs(schema)); compiled.set(key, v); }
    return v;
  };
  const routes = Object.keys(doc.paths).map((t) => ({ template: t, re: templateRegex(t), item: doc.paths[t] }));
  const seen = new Map();   // "METHOD template" -> Set of statuses

  const fmtErrors = (errs) => (errs || []).map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''}`).join('; ');

  function validate(schema, value) {
    const v = compile(schema);
    return v(value) ? null : fmtErrors(v.errors);
  }

  function findRoute(pathname) {
    return routes.find((r) => r.re.test(pathname));
  }

  /** Problems of one header value against its description (strings; integers as digits). */
  function headerProblem(name, h, value) {
    const schema = h.schema || {};
    let v = value;
    if (schema.type === 'integer' || schema.type === 'number') {
      if (!/^-?\d+(\.\d+)?$/.test(value)) return `header ${name}: ${JSON.stringify(value)} is not a number`;
      v = Number(value);
    }
    const err = validate(schema, v);
    return err ? `header ${name}: ${JSON.stringify(value)}: ${err}` : null;
  }

  /** Checks res against the response the description gives; returns a list of problems. */
  function check(method, rawPath, res) {
    const m = method.toLowerCase();
    const pathname = rawPath.split('?')[0];
    const problems = [];
    const route = findRoute(pathname);
    if (!route) {
      // Unknown routes under /v1 (and outside it): 404 not_found, described in info.
      if (res.status !== 404) problems.push(`path not described, and the status is ${res.status}, not 404`);
      const err = validate({ $ref: '#/components/schemas/ErrorNotFound' }, res.json);
      if (err) problems.push(`body of 404 for an undescribed path: ${err}`);
      else if (res.json.error !== 'not_found') problems.push(`undescribed path: error ${res.json.error}, not not_found`);
      return { problems, where: `${method} ${pathname} (no path)` };
    }
    let op = route.item[m];
    let response;
    let where = `${method} ${route.template}`;
    if (!op) {
      // A method the path does not list: 405 with Allow naming those it
      // lists, unless a check that comes before 405 in the documented
      // order of checks (info: framing, 401, 429) answered first.
      const before405 = { 400: 'BadRequestFraming', 401: 'Unauthorized', 414: 'UriTooLong', 421: 'MisdirectedRequest', 429: 'TooManyRequests', 431: 'HeadersTooLarge', 501: 'NotImplemented' };
      const name = res.status === 405 ? 'MethodNotAllowed' : before405[res.status];
      if (!name) problems.push(`${method} is not described for ${route.template}: status ${res.status}, not 405 (nor a check made before it)`);
      if (res.status === 405) {
        const listed = METHODS.filter((x) => route.item[x]).map((x) => x.toUpperCase());
        const allow = String(res.headers.allow || '').split(',').map((s) => s.trim()).filter(Boolean);
        if ([...allow].sort().join(',') !== [...listed].sort().join(','))
          problems.push(`Allow ${JSON.stringify(res.headers.allow)} differs from the described methods ${listed.join(', ')}`);
      }
      where += ` (not described: ${res.status === 405 ? '405' : `${res.status}, before 405`})`;
      op = { responses: { [res.status]: doc.components.responses[name || 'MethodNotAllowed'] } };
    }
    const st = String(res.status);
    response = op.responses[st] ?? op.responses[`${st[0]}XX`] ?? op.responses.default;
    if (!response) {
      problems.push(`status ${res.status} is not described (described: ${Object.keys(op.responses).join(', ')}); body ${String(res.text).slice(0, 300)}`);
      return { problems, where };
    }
    const key = `${method.toUpperCase()} ${route.template}`;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key).add(res.status);
    response = deref(doc, response);
    for (const [name, hRef] of Object.entries(response.headers || {})) {
      const h = deref(doc, hRef);
      const value = res.headers[name.toLowerCase()];
      if (value === undefined) {
        if (h.required) problems.push(`required header ${name} missing`);
        continue;
      }
      const p = headerProblem(name, h, Array.isArray(value) ? value.join(', ') : value);
      if (p) problems.push(p);
    }
    const content = response.content;
    const text = res.text ?? '';
    if (!content) {
      if (text.length) problems.push(`no body described, got ${JSON.stringify(text.slice(0, 200))}`);
      return { problems, where };
    }
    const ct = res.headers['content-type'];
    const media = Object.keys(content).find((k) => mediaBase(k) === mediaBase(ct));
    if (!media) {
      problems.push(`Content-Type ${JSON.stringify(ct)} is not one of ${Object.keys(content).join(', ')}`);
      return { problems, where };
    }
    // Media types with parameters in the description (text/plain; version=0.0.4) must match whole.
    if (media.includes(';') && media.replace(/\s+/g, '').toLowerCase() !== String(ct).replace(/\s+/g, '').toLowerCase())
      problems.push(`Content-Type ${JSON.stringify(ct)} is not ${JSON.stringify(media)}`);
    if (m === 'head') {
      if (text.length) problems.push('HEAD answered with a body');
      return { problems, where };
    }
    const schema = content[media].schema;
    if (!schema) return { problems, where };
    let body = text;
    if (mediaBase(media) === 'application/json') {
      try { body = JSON.parse(text); } catch (e) {
        problems.push(`body is not JSON (${e.message}): ${JSON.stringify(text.slice(0, 200))}`);
        return { problems, where };
      }
    }
    const err = validate(schema, body);
    if (err) problems.push(`body ${JSON.stringify(body).slice(0, 400)}: ${err}`);
    return { problems, where };
  }

  return {
    doc,
    seen,
    check,
    /** Throws when res does not match the description for method + path. Returns res. */
    assertResponse(method, rawPath, res) {
      const { problems, where } = check(method, rawPath, res);
      assert.ok(problems.length === 0,
        `response does not match docs/openapi.yaml: ${method} ${rawPath} -> ${res.status} (${where}):\n  - ${problems.join('\n  - ')}`);
      return res;
    },
    /** Throws when body does not match the operation's request body schema (application/json). */
    assertRequestBody(method, rawPath, body) {
      const route = findRoute(rawPath.split('?')[0]);
      assert.ok(route, `path not described: ${rawPath}`);
      const op = route.item[method.toLowerCase()];
      assert.ok(op && op.requestBody, `${method} ${route.template} has no request body described`);
      const rb = deref(doc, op.requestBody);
      const err = validate(rb.content['application/json'].schema, body);
      assert.ok(!err, `request body the gateway accepted does not match docs/openapi.yaml: ${method} ${route.template}: ${JSON.stringify(body).slice(0, 300)}: ${err}`);
    },
    /** Throws when value does not match components.schemas[name]. */
    assertSchema(name, value, what = name) {
      assert.ok(doc.components.schemas[name], `no schema ${name}`);
      const err = validate({ $ref: `#/components/schemas/${name}` }, value);
      assert.ok(!err, `${what} does not match docs/openapi.yaml #/components/schemas/${name}: ${JSON.stringify(value).slice(0, 300)}: ${err}`);
    },
    /** "METHOD template" of every operation the description lists. */
    operations() {
      const out = [];
      for (const r of routes) for (const m of METHODS) if (r.item[m]) out.push(`${m.toUpperCase()} ${r.template}`);
      return out;
    },
  };
}
