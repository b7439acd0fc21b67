import { BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';

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

/** One validation problem with the field it concerns (Stripe's `param`): nested fields dotted, e.g. customer.email. */
export interface FieldProblem {
  param: string;
  message: string;
}

/**
 * Every constraint message of `errors` with the field it belongs to, in the order (and with the
 * parent-path prefix) that ValidationPipe's flattenValidationErrors gives the messages.
 */
export function fieldProblems(errors: ValidationError[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  const push = (e: ValidationError, prefix: string | undefined) => {
    for (const m of Object.values(e.constraints ?? {}))
      out.push(
        prefix ? { param: `${prefix}.${e.property}`, message: `${prefix}.${m}` } : { param: e.property, message: m },
      );
  };
  const walk = (e: ValidationError, parent: string | undefined) => {
    if (!e.children?.length) {
      push(e, parent);
      return;
    }
    const path = parent ? `${parent}.${e.property}` : e.property;
    for (const child of e.children) {
      if (child.children?.length) walk(child, path);
      push(child, path);
    }
  };
  for (const e of errors) walk(e, undefined);
  return out;
}

/**
 * The global ValidationPipe, reporting a wrong type once (see typeErrorsOnly), and naming the field
 * of each problem: the 400's `errors` (the filter puts them in details.errors next to
 * details.problems, the messages as before).
 */
export class ApiValidationPipe extends ValidationPipe {
  override createExceptionFactory(): (validationErrors?: ValidationError[]) => unknown {
    const factory = super.createExceptionFactory();
    return (validationErrors: ValidationError[] = []) => {
      const errors = typeErrorsOnly(validationErrors);
      const exception = factory(errors);
      if (!(exception instanceof BadRequestException)) return exception;
      const response = exception.getResponse() as { message?: unknown };
      if (!Array.isArray(response.message)) return exception;
      // Nest may cut a long list short (maxErrorMessagesLength): pair only the messages it kept.
      const problems = fieldProblems(errors);
      const paired: FieldProblem[] = [];
      for (const [i, message] of response.message.entries()) {
        if (problems[i]?.message !== message) break;
        paired.push(problems[i]);
      }
      return new BadRequestException({ ...response, errors: paired }, { cause: exception });
    };
  }
}
