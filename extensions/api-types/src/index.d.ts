/**
 * The gpuhub REST API's types for both front ends, by the schema names of
 * docs/reference/openapi.yaml. openapi.d.ts beside this file is generated from it
 * (`npm run gen:api`); a front end aliases what it reads: `type Lease = Schema<'Lease'>`.
 */
import type { components } from './openapi';

export type { components, operations, paths } from './openapi';

/** The schema `Name` of the API document (`Schema<'QuotaStatus'>`). */
export type Schema<Name extends keyof components['schemas']> = components['schemas'][Name];

/** The JSON body of every error the API answers: `{status, error, message, field}`. */
export type ErrorBody = Schema<'Error'>;

/** The machine-readable kinds of error (`error` of an `ErrorBody`). */
export type ErrorCode = ErrorBody['error'];
