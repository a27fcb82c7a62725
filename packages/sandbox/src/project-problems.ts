import { didYouMean } from "@bulkhead/core";
import type { z } from "zod";

type Path = readonly PropertyKey[];
type Issue = z.core.$ZodIssue;

/** The key that picks each `image` form, in the order of projectSchema's union. */
const IMAGE_FORMS = ["files", "dockerfile", "existing"] as const;
const IMAGE_EXAMPLE =
  'e.g. image: { existing: "node:20" } (an image on this host), { dockerfile: Dockerfile, context: . }, or { files: { rootfs/bin/busybox: /bin/busybox }, dockerfile: "FROM scratch…" }';

/** `repos[0].mode`: the key path as a person reads it in the YAML. */
export function formatProjectPath(path: Path): string {
  return path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`),
    "",
  );
}

const valueAt = (raw: unknown, path: Path): unknown =>
  path.reduce<unknown>(
    (value, key) => (typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined),
    raw,
  );

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A value as the message quotes it: short, and saying what kind of thing it is. */
function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null (an empty value)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the text ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  return `${typeof value === "number" ? "the number" : "the value"} ${String(value)}`;
}

const KINDS: Record<string, string> = {
  string: "text",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping (key: value lines)",
  record: "a mapping (key: value lines)",
};

/** One zod issue in the user's terms: the key path, what was expected, what was there. */
function describe(issue: Issue, raw: unknown, prefix: Path, schema: unknown): string[] {
  const path = [...prefix, ...issue.path];
  const at = formatProjectPath(path) || "(project)";
  const value = valueAt(raw, path);
  switch (issue.code) {
    case "invalid_union":
      if (formatProjectPath(path) === "image") return imageProblems(issue, value, path, raw, schema);
      return [`${at}: ${shown(value)} is not one of the forms this key takes`];
    case "invalid_type":
      return value === undefined
        ? [`${at}: missing: expected ${KINDS[issue.expected] ?? issue.expected}`]
        : [`${at}: expected ${KINDS[issue.expected] ?? issue.expected}, got ${shown(value)}`];
    case "invalid_value":
      return [`${at}: expected one of ${issue.values.map((option) => String(option)).join(", ")}, got ${shown(value)}`];
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const suggestion = didYouMean(key, knownKeys(schema, path));
        return `${formatProjectPath([...path, key])}: not a key of ${at === "(project)" ? "a project" : at}${suggestion ? `; did you mean "${suggestion}"?` : ""}`;
      });
    case "invalid_key": {
      const key = String(path.at(-1));
      const reason = issue.issues.map((inner) => inner.message).join("; ");
      return [`${formatProjectPath(path.slice(0, -1))}: the key ${JSON.stringify(key)} is not valid: ${reason}`];
    }
    case "invalid_format":
      // The schema's own messages say what is expected; zod's default one only shows the pattern.
      return [issue.message.startsWith("Invalid") ? `${at}: ${shown(value)} is not in the expected form` : `${at}: ${issue.message}`];
    case "too_small":
      if (!issue.message.startsWith("Too small")) return [`${at}: ${issue.message}`];
      return [
        issue.origin === "string"
          ? `${at}: must not be empty`
          : issue.origin === "array"
            ? `${at}: list at least ${String(issue.minimum)}`
            : `${at}: expected ${issue.inclusive ? "at least" : "more than"} ${String(issue.minimum)}, got ${shown(value)}`,
      ];
    case "too_big":
      if (!issue.message.startsWith("Too big")) return [`${at}: ${issue.message}`];
      return [
        `${at}: expected ${issue.inclusive ? "at most" : "less than"} ${String(issue.maximum)}${issue.origin === "string" ? " characters" : ""}`,
      ];
    default:
      return [`${at}: ${issue.message}`];
  }
}

type Def = { type: string; innerType?: unknown; shape?: Record<string, unknown>; element?: unknown; options?: unknown[] };
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** The object schemas at `path` in `schema` (a union gives each of its forms). */
function schemasAt(schema: unknown, path: Path): unknown[] {
  let current = [schema];
  for (const key of path) {
    current = current.flatMap((candidate) => {
      let def = defOf(candidate);
      while (def.innerType !== undefined) def = defOf(def.innerType);
      if (def.type === "union") return (def.options ?? []).flatMap((option) => schemasAt(option, [key]));
      if (def.type === "object") return def.shape?.[String(key)] === undefined ? [] : [def.shape[String(key)]];
      if (def.type === "array" && typeof key === "number") return [def.element];
      return [];
    });
  }
  return current.flatMap((candidate) => {
    let def = defOf(candidate);
    while (def.innerType !== undefined) def = defOf(def.innerType);
    return def.type === "union" ? (def.options ?? []) : [candidate];
  });
}

/** The keys a mapping at `path` may have, for "did you mean": read from the schema itself. */
function knownKeys(schema: unknown, path: Path): string[] {
  const keys = schemasAt(schema, path).flatMap((candidate) => {
    const def = defOf(candidate);
    return def.type === "object" ? Object.keys(def.shape ?? {}) : [];
  });
  return [...new Set(keys)];
}

/**
 * `image` is one of three forms; zod says only "Invalid input" for it. The form is picked by its
 * keys (existing, files, dockerfile), and that form's own problems are reported; with none of
 * them, the message says which keys make an image, with an example.
 */
function imageProblems(
  issue: Extract<Issue, { code: "invalid_union" }>,
  value: unknown,
  path: Path,
  raw: unknown,
  schema: unknown,
): string[] {
  if (value === undefined) return [`image: missing: say how the session's image is made, ${IMAGE_EXAMPLE}`];
  if (!isMapping(value)) {
    const hint = typeof value === "string" ? `; for an image on this host write image: { existing: ${JSON.stringify(value)} }` : "";
    return [`image: expected a mapping, got ${shown(value)}${hint} (${IMAGE_EXAMPLE})`];
  }
  const given = Object.keys(value);
  const form = IMAGE_FORMS.findIndex((picks) => given.includes(picks));
  if (form === -1) {
    const imageKeys = knownKeys(schema, path);
    const unknown = given.filter((key) => !imageKeys.includes(key));
    const named = unknown.map((key) => {
      const suggestion = didYouMean(key, imageKeys);
      return `"${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`;
    });
    return [
      `image: ${named.length > 0 ? `${named.join(", ")} ${named.length === 1 ? "is not an image key" : "are not image keys"}; ` : ""}give existing, dockerfile or files, ${IMAGE_EXAMPLE}`,
    ];
  }
  const problems = (issue.errors[form] ?? []).flatMap((inner) => describe(inner, raw, path, schema));
  if (given.includes("existing") && given.length > 1)
    return [
      `image: existing names a ready image and takes no other key (${given.filter((key) => key !== "existing").join(", ")}): remove them, or build one with dockerfile`,
    ];
  if (given.includes("files") && given.includes("context"))
    return ["image: files and context are two ways to give the build context: keep one (files lists them, context is a directory)"];
  return problems.length > 0 ? problems : [`image: not a valid image form, ${IMAGE_EXAMPLE}`];
}

/**
 * Every problem of a project that failed `schema` (projectSchema), in the user's terms: the key
 * path, what was expected, what was there, and for `image` an example of each form.
 */
export function projectProblems(error: z.ZodError, raw: unknown, schema: z.ZodType): string[] {
  return error.issues.flatMap((issue) => describe(issue, raw, [], schema));
}
