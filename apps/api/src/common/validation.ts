import { ValidationPipe, type ValidationError } from '@nestjs/common';

/** class-validator constraints that check a value's JSON type. */
const TYPE_CONSTRAINTS = ['isString', 'isInt', 'isNumber', 'isBoolean', 'isObject', 'isArray'];

/**
 * For a value that was sent with the wrong JSON type, only the type error: `accountReference: 12345`
 * is "accountReference must be a string", not also "must be at most 100 characters" (a length or
 * pattern rule says nothing useful about a number). A missing value (undefined) keeps every message,
 * since those say what is expected; a value of the right type keeps every rule it breaks.
 */
export function typeErrorsOnly(errors: ValidationError[]): ValidationError[] {
  return errors.map((e) => {
    const failedType =
      e.value !== undefined && e.constraints
        ? TYPE_CONSTRAINTS.find((c) => e.constraints![c] !== undefined)
        : undefined;
    const constraints = failedType ? { [failedType]: e.constraints![failedType] } : e.constraints;
    return { ...e, constraints, children: e.children ? typeErrorsOnly(e.children) : e.children };
  });
}

/** The global ValidationPipe, reporting a wrong type once (see typeErrorsOnly). */
export class ApiValidationPipe extends ValidationPipe {
  override createExceptionFactory(): (validationErrors?: ValidationError[]) => unknown {
    const factory = super.createExceptionFactory();
    return (validationErrors: ValidationError[] = []) => factory(typeErrorsOnly(validationErrors));
  }
}
