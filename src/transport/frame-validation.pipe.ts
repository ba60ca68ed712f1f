import { ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError } from '../common/app-error';

function firstProblem(errors: ValidationError[], prefix = ''): { field: string; problem: string } {
  const error = errors[0];
  const field = prefix + error.property;
  if (error.constraints) return { field, problem: Object.values(error.constraints)[0] };
  if (error.children?.length) return firstProblem(error.children, `${field}.`);
  return { field, problem: `${field} is invalid` };
}

/** class-validator for inbound frames: the first problem becomes `invalid_message` naming its field. */
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
}
