import type { MetadataStorage as TransformerMetadata } from 'class-transformer/types/MetadataStorage';
import type { TypeMetadata } from 'class-transformer/types/interfaces';
import { getMetadataStorage, type ValidationArguments, ValidationTypes } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';

// class-transformer's metadata (the module @nestjs/mapped-types reads it from too).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- class-transformer exports its metadata storage from no entry point (issue 21 removes this file)
const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as { defaultMetadataStorage: TransformerMetadata };

/**
 * The common case of a DTO frame, decided with the DTO's own class-validator and class-transformer
 * metadata but without their executors: `FrameValidationPipe` asks this first and falls back to
 * Nest's `ValidationPipe` whenever it answers `undefined`.
 *
 * Why: a frame arrives after its socket was idle, and on an idle vCPU every layer of code a turn
 * crosses runs cold. The pipe's generic path (plainToInstance walking the class's metadata, then
 * class-validator looking the metadata up again, grouping it and building a ValidationError per
 * property) took ~0.4 ms of a 1-client turn and ~7% of the server's CPU when 500 turns start at once
 * (bench/findings.md). This walks a plan made once per class and calls the same constraint
 * functions (`IsUUID`'s, `Length`'s, a `ValidateIf`'s condition) with the same arguments.
 *
 * It only ever says "valid, and here is the instance": for a value it is unsure of (any constraint
 * fails, an unexpected shape, a key it does not copy the way class-transformer does) it says
 * nothing, and the full pipe decides — with its own error message. A class whose metadata it does
 * not know how to follow (async or unknown validation types, @Transform/@Expose/@Exclude, a
 * discriminator, accessors or methods on the prototype) gets no plan at all. The spec compares it
 * with the full pipe on every frame DTO of the app.
 */
export type FastPath = (value: object) => object | undefined;

interface Constraint {
  metadata: ValidationMetadata;
  /** The constraint classes' instances (`validate(value, args)`), as class-validator finds them. */
  validators: { validate(value: unknown, args: ValidationArguments): unknown }[];
}

interface PropertyPlan {
  name: string;
  /** `IsOptional`, `ValidateIf` on the property: all must hold, else the property is not checked. */
  conditions: ((object: object, value: unknown) => boolean)[];
  /** `IsDefined`: checked before the other constraints, as class-validator does. */
  defined: Constraint[];
  custom: Constraint[];
  /** `ValidateNested` (with a `@Type`, which made the value an instance of the nested class). */
  hasNested: boolean;
}

interface ClassPlan {
  target: new () => object;
  properties: PropertyPlan[];
  /** The validated properties' names. */
  names: Set<string>;
  /** Property name → its `@Type`: the class a plain object value becomes. */
  types: Map<string, TypeMetadata>;
  /** Keys met in values that no validation names: whether class-transformer copies them as they are. */
  otherKeys: Map<string, boolean>;
}

/** How many keys outside a class's validated properties are remembered (values are client input). */
const OTHER_KEYS_KEPT = 64;

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const plans = new WeakMap<object, ClassPlan | null>();
const fastPaths = new WeakMap<object, FastPath | null>();

/** The fast path for frames of `metatype` (made once per class), or undefined when its metadata is not one it follows. */
export function fastPathFor(metatype: unknown): FastPath | undefined {
  if (typeof metatype !== 'function') return undefined;
  let fast = fastPaths.get(metatype);
  if (fast === undefined) {
    const plan = planOf(metatype as new () => object);
    fast = plan
      ? (value) => {
          if (Array.isArray(value)) return undefined;
          const entity = instantiate(plan, value as Record<string, unknown>);
          return entity && isValid(plan, entity) ? entity : undefined;
        }
      : null;
    fastPaths.set(metatype, fast);
  }
  return fast ?? undefined;
}

function planOf(target: new () => object): ClassPlan | null {
  if (plans.has(target)) return plans.get(target)!;
  plans.set(target, null); // a class nested in itself is not followed
  const plan = makePlan(target);
  plans.set(target, plan);
  return plan;
}

function makePlan(target: new () => object): ClassPlan | null {
  if (!plainClass(target)) return null;
  const transformer = defaultMetadataStorage;
  if (transformer.getStrategy(target) !== 'none' || transformer.getExposedMetadatas(target).length || transformer.getExcludedMetadatas(target).length) {
    return null;
  }
  // What ValidationPipe's executor asks for: no groups, `always` off, strict groups off.
  const storage = getMetadataStorage();
  const all = storage.getTargetValidationMetadatas(target, undefined as unknown as string, false, false, undefined);
  if (!all.length) return null; // forbidUnknownValues and friends: left to the full pipe
  const grouped = storage.groupByPropertyName(all);
  const properties: PropertyPlan[] = [];
  const types = new Map<string, TypeMetadata>();
  for (const [name, metadatas] of Object.entries(grouped)) {
    if (UNSAFE_KEYS.has(name) || hasTransforms(target, name)) return null;
    const property: PropertyPlan = { name, conditions: [], defined: [], custom: [], hasNested: false };
    for (const metadata of metadatas) {
      switch (metadata.type) {
        case ValidationTypes.CONDITIONAL_VALIDATION:
          property.conditions.push(metadata.constraints[0] as PropertyPlan['conditions'][number]);
          break;
        case ValidationTypes.IS_DEFINED:
        case ValidationTypes.CUSTOM_VALIDATION: {
          const validators = storage.getTargetValidatorConstraints(metadata.constraintCls);
          if (!validators.length || validators.some((v) => v.async)) return null;
          (metadata.type === ValidationTypes.IS_DEFINED ? property.defined : property.custom).push({
            metadata,
            validators: validators.map((v) => v.instance as Constraint['validators'][number]),
          });
          break;
        }
        case ValidationTypes.NESTED_VALIDATION: {
          const type = transformer.findTypeMetadata(target, name);
          if (!type || type.options?.discriminator) return null;
          property.hasNested = true;
          break;
        }
        default:
          return null; // promise validation, whitelist, anything newer
      }
    }
    properties.push(property);
  }
  // Every @Type of the class: a plain object under that key becomes the nested class.
  for (const property of properties) {
    const type = transformer.findTypeMetadata(target, property.name);
    if (!type) continue;
    if (type.options?.discriminator) return null;
    types.set(property.name, type);
  }
  return { target, properties, names: new Set(properties.map((p) => p.name)), types, otherKeys: new Map() };
}

/** A class whose prototype chain holds nothing but constructors (class-transformer skips accessors and methods). */
function plainClass(target: new () => object): boolean {
  for (let proto = target.prototype as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    if (Object.getOwnPropertyNames(proto).some((key) => key !== 'constructor') || Object.getOwnPropertySymbols(proto).length) return false;
  }
  return true;
}

function hasTransforms(target: new () => object, name: string): boolean {
  // TransformationType.PLAIN_TO_CLASS is 0.
  return defaultMetadataStorage.findTransformMetadatas(target, name, 0).length > 0;
}

/** A key no validation names is copied as it is unless class-transformer has metadata for it. */
function copiedAsIs(plan: ClassPlan, key: string): boolean {
  let copied = plan.otherKeys.get(key);
  if (copied === undefined) {
    copied = !UNSAFE_KEYS.has(key) && !hasTransforms(plan.target, key) && !defaultMetadataStorage.findTypeMetadata(plan.target, key);
    if (plan.otherKeys.size < OTHER_KEYS_KEPT) plan.otherKeys.set(key, copied);
  }
  return copied;
}

/**
 * `plainToInstance(target, value)` for the values class-transformer copies as they are: primitives,
 * null, arrays of primitives (copied), and plain objects under a key with `@Type` (recursively).
 * Undefined when the value holds anything else.
 */
function instantiate(plan: ClassPlan, value: Record<string, unknown>): object | undefined {
  if (Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  const entity = new plan.target() as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    if (!plan.names.has(key) && !copiedAsIs(plan, key)) return undefined;
    const item = value[key];
    if (item === null || typeof item !== 'object') {
      if (typeof item === 'function' || typeof item === 'symbol' || typeof item === 'bigint' || item === undefined) return undefined;
      if (plan.types.has(key) && item !== null) return undefined; // a @Type property holding a primitive: left to the full pipe
      entity[key] = item;
    } else if (Array.isArray(item)) {
      if (plan.types.has(key) || !item.every((element) => element === null || (typeof element !== 'object' && typeof element !== 'function'))) return undefined;
      entity[key] = item.slice();
    } else {
      const nested = nestedPlan(plan.types.get(key), entity, value, key);
      if (!nested) return undefined;
      const copy = instantiate(nested, item as Record<string, unknown>);
      if (!copy) return undefined;
      entity[key] = copy;
    }
  }
  return entity;
}

/** The plan of the class a `@Type` makes of a plain object (asked as class-transformer asks it). */
function nestedPlan(type: TypeMetadata | undefined, newObject: object, object: Record<string, unknown>, property: string): ClassPlan | null {
  if (!type) return null;
  let cls: unknown;
  try {
    cls = type.typeFunction ? type.typeFunction({ newObject, object, property }) : type.reflectedType;
  } catch {
    return null;
  }
  return typeof cls === 'function' ? planOf(cls as new () => object) : null;
}

/** class-validator's verdict (no errors) on an instance made by `instantiate`, for the plan's metadata. */
function isValid(plan: ClassPlan, entity: object): boolean {
  const object = entity as Record<string, unknown>;
  for (const property of plan.properties) {
    const value = object[property.name];
    if (!property.conditions.every((condition) => condition(entity, value))) continue;
    if (!passes(property.defined, entity, value) || !passes(property.custom, entity, value)) return false;
    if (property.hasNested && value !== undefined) {
      // As class-validator: the nested instance is checked against its own class's metadata.
      const nested = value !== null && typeof value === 'object' && !Array.isArray(value) ? plans.get((value as object).constructor) : undefined;
      if (!nested || !isValid(nested, value as object)) return false;
    }
  }
  return true;
}

function passes(constraints: Constraint[], object: object, value: unknown): boolean {
  for (const { metadata, validators } of constraints) {
    if (metadata.validateIf && !metadata.validateIf(object, value)) continue;
    const args: ValidationArguments = {
      targetName: object.constructor.name,
      property: metadata.propertyName,
      object,
      value,
      constraints: metadata.constraints,
    };
    for (const validator of validators) {
      // (`instantiate` makes no Set or Map, which `each` would also walk.)
      if (metadata.each && Array.isArray(value)) {
        for (const item of value) if (validator.validate(item, args) !== true) return false;
      } else if (validator.validate(value, args) !== true) {
        return false;
      }
    }
  }
  return true;
}
