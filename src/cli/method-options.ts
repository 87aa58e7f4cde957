/**
 * The erase CLI's method flags, derived from the methods' own option schemas (one schema per
 * method: the flags, the API's validation and the report all come from it). No yargs defaults:
 * an option not given is resolved by erase() from the model's or the method's defaults, and the
 * run says which applied.
 */
import type { Argv, Options } from 'yargs';
import { z } from 'zod';
import { registeredMethods } from '../erase';

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface JsonProperty {
  type?: string;
  enum?: string[];
  items?: { type?: string };
  description?: string;
}

function flagFor(prop: JsonProperty, describe: string): Options {
  if (prop.type === 'array') return { type: 'string', array: true, describe };
  if (prop.type === 'number' || prop.type === 'integer') return { type: 'number', describe };
  if (prop.type === 'boolean') return { type: 'boolean', describe };
  return { type: 'string', describe, ...(prop.enum ? { choices: prop.enum } : {}) };
}

/** Every method option as one flag, with which methods take it and their reference default. */
export function methodFlags(): Record<string, Options> {
  const methods = registeredMethods();
  const byKey = new Map<string, { prop: JsonProperty; ids: string[]; reference: Set<string> }>();
  for (const m of methods) {
    const schema = z.toJSONSchema(m.options) as { properties: Record<string, JsonProperty> };
    for (const [key, prop] of Object.entries(schema.properties)) {
      const entry = byKey.get(key) ?? { prop, ids: [], reference: new Set<string>() };
      entry.ids.push(m.id);
      const ref = (m.referenceDefaults as Record<string, unknown>)[key];
      if (ref !== undefined) entry.reference.add(JSON.stringify(ref));
      byKey.set(key, entry);
    }
  }
  const out: Record<string, Options> = {};
  for (const [key, { prop, ids, reference }] of byKey) {
    const who = ids.length === methods.length ? '' : ` [${ids.join(', ')}]`;
    const ref = reference.size === 1 ? ` (reference: ${[...reference][0]})` : '';
    out[kebab(key)] = flagFor(prop, `${prop.description ?? key}${who}${ref}`);
  }
  return out;
}

/** The camelCase names of every method option, for picking them out of argv. */
export function methodOptionKeys(): string[] {
  return [...new Set(registeredMethods().flatMap((m) => Object.keys(m.options.shape)))];
}

export function withMethodFlags<T>(y: Argv<T>): Argv<T> {
  return y.options(methodFlags()) as unknown as Argv<T>;
}
