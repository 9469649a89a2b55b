// Checks Litchi's OpenAPI document (docs/openapi.json) with standard tools
// from npm, for tests/integration/test_openapi.py:
//
//   node check.mjs validate DOC
//       DOC against the OpenAPI 3.1 specification's own schema
//       (@seriousme/openapi-schema-validator), and every schema in it compiled
//       by Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1), so a $ref
//       that points nowhere fails too.
//
//   node check.mjs answers DOC RECORDS
//       RECORDS: a JSON file, a list of real exchanges with a server:
//         {"method", "path" (the document's template, "/api/jobs/{id}"),
//          "status", "content_type", "body" (text)}
//       or a value to check against one named schema:
//         {"schema": "ManifestLine", "body": text}
//       Each answer must be one the document lists for that path and method:
//       its exact status (not `default`), a media type the answer declares,
//       a JSON body valid against that answer's schema, and no body where the
//       document declares none.
//
// Prints one line per problem and exits 1 when there is any; exit 2 on a
// usage error. Node's standard library and the packages in package.json only.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function usage(message) {
  console.error(`check.mjs: ${message}\nusage: node check.mjs validate DOC | answers DOC RECORDS`);
  process.exit(2);
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    usage(`${path}: ${error.message}`);
  }
}

// An Ajv that reads the document's schemas: refs like
// "#/components/schemas/Job" resolve inside a root that carries the
// document's components. OpenAPI's own keywords (description, example...)
// are not JSON Schema vocabulary errors, hence strict: false.
function makeAjv() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("password", true); // an OpenAPI hint for UIs, not a constraint
  return ajv;
}

function compileInDocument(ajv, doc, schema) {
  return ajv.compile({ allOf: [schema], components: doc.components });
}

function resolve(doc, value) {
  let seen = 0;
  while (value && typeof value.$ref === "string") {
    if (++seen > 16) throw new Error(`$ref loop at ${value.$ref}`);
    if (!value.$ref.startsWith("#/")) throw new Error(`not a local $ref: ${value.$ref}`);
    value = value.$ref
      .slice(2)
      .split("/")
      .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
      .reduce((node, key) => (node === undefined ? undefined : node[key]), doc);
  }
  return value;
}

function describeErrors(errors) {
  return (errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
}

async function validate(docPath) {
  const problems = [];
  const validator = new Validator();
  const result = await validator.validate(docPath);
  if (!result.valid) {
    problems.push(`not a valid OpenAPI document: ${JSON.stringify(result.errors)}`);
  } else if (!String(validator.version).startsWith("3.1")) {
    problems.push(`OpenAPI version ${validator.version}, expected 3.1`);
  }
  // Every schema compiles, refs included (the validator does not follow refs).
  const doc = readJson(docPath);
  const ajv = makeAjv();
  const schemas = [];
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    schemas.push([`components.schemas.${name}`, schema]);
  }
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      for (const [status, answer] of Object.entries(op.responses || {})) {
        try {
          const resolved = resolve(doc, answer);
          for (const [type, media] of Object.entries(resolved?.content || {})) {
            if (media.schema) schemas.push([`${method} ${path} ${status} ${type}`, media.schema]);
          }
        } catch (error) {
          problems.push(`${method} ${path} ${status}: ${error.message}`);
        }
      }
      for (const param of op.parameters || []) {
        try {
          const resolved = resolve(doc, param);
          if (!resolved) problems.push(`${method} ${path}: parameter ${param.$ref} points nowhere`);
        } catch (error) {
          problems.push(`${method} ${path}: ${error.message}`);
        }
      }
    }
  }
  for (const [where, schema] of schemas) {
    try {
      compileInDocument(ajv, doc, schema);
    } catch (error) {
      problems.push(`${where}: ${error.message}`);
    }
  }
  return problems;
}

function mediaMatches(declared, actual) {
  if (declared === actual) return true;
  const [type, sub] = declared.split("/");
  return sub === "*" && actual.startsWith(`${type}/`);
}

function checkAnswers(docPath, recordsPath) {
  const doc = readJson(docPath);
  const records = readJson(recordsPath);
  if (!Array.isArray(records)) usage(`${recordsPath}: not a JSON list`);
  const ajv = makeAjv();
  const problems = [];
  records.forEach((record, index) => {
    const where = record.schema
      ? `#${index} (${record.schema})`
      : `#${index} ${record.method} ${record.path} → ${record.status}`;
    const fail = (message) => problems.push(`${where}: ${message}`);
    let schema;
    if (record.schema) {
      schema = doc.components?.schemas?.[record.schema];
      if (!schema) return fail("no such schema in components.schemas");
      schema = { $ref: `#/components/schemas/${record.schema}` };
    } else {
      const op = doc.paths?.[record.path]?.[String(record.method).toLowerCase()];
      if (!op) return fail("the document has no such operation");
      const answer = resolve(doc, op.responses?.[String(record.status)]);
      if (!answer) return fail(`status ${record.status} is not among the answers it lists`);
      const type = String(record.content_type || "")
        .split(";")[0]
        .trim()
        .toLowerCase();
      const content = answer.content || {};
      if (Object.keys(content).length === 0) {
        if (record.body) fail(`the document declares no body, the answer has ${record.body.length} bytes`);
        return;
      }
      const declared = Object.keys(content).find((key) => mediaMatches(key, type));
      if (!declared) {
        return fail(`Content-Type ${type || "(none)"} is not one of ${Object.keys(content).join(", ")}`);
      }
      if (type !== "application/json") return;
      schema = content[declared].schema;
      if (!schema) return;
    }
    let value;
    try {
      value = JSON.parse(record.body);
    } catch (error) {
      return fail(`body is not JSON: ${error.message}`);
    }
    const check = compileInDocument(ajv, doc, schema);
    if (!check(value)) fail(`body does not match the schema: ${describeErrors(check.errors)}`);
  });
  return problems;
}

const [command, docPath, recordsPath] = process.argv.slice(2);
if (!docPath) usage("no document given");
let problems;
if (command === "validate") {
  problems = await validate(docPath);
} else if (command === "answers") {
  if (!recordsPath) usage("no records file given");
  problems = checkAnswers(docPath, recordsPath);
} else {
  usage(`unknown command ${command}`);
}
for (const problem of problems) console.log(problem);
if (problems.length > 0) process.exit(1);
console.log(command === "validate" ? "valid OpenAPI 3.1 document" : "every answer matches the document");
