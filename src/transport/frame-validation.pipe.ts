import { type ArgumentMetadata, type ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { fastPathFor } from './dto-fast-path';

function firstProblem(errors: ValidationError[], prefix = ''): { field: string; problem: string } {
  const error = errors[0];
  const field = prefix + error.property;
  if (error.constraints) return { field, problem: Object.values(error.constraints)[0] };
  if (error.children?.length) return firstProblem(error.children, `${field}.`);
  return { field, problem: `${field} is invalid` };
}

/**
 * class-validator for inbound frames: the first problem becomes `invalid_message` naming its field.
 * A frame its DTO's fast path (`dto-fast-path.ts`) finds valid skips the generic pipe; every other
 * frame, and every DTO the fast path does not follow, goes through Nest's `ValidationPipe`.
 */
export class FrameValidationPipe extends ValidationPipe {
  constructor() {
    super({
      transform: true,
      forbidUnknownValues: false,
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => {
        const { field, problem } = firstProblem(errors);
        return new AppError('invalid_message', `${field}: ${problem}`, { field });
      },
    });
  }

  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // ('custom' parameters, such as the socket, are not validated by ValidationPipe either.)
    const fast = typeof value === 'object' && value !== null && metadata.type !== 'custom' ? fastPathFor(metadata.metatype)?.(value) : undefined;
    return fast ? Promise.resolve(fast) : super.transform(value, metadata);
  }
}
