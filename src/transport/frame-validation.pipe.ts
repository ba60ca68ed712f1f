import { type ArgumentMetadata, type ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { FRAME_PARAM } from './frame-params';

function firstProblem(errors: ValidationError[], prefix = ''): { field: string; problem: string } {
  const error = errors[0];
  const field = prefix + error.property;
  if (error.constraints) return { field, problem: Object.values(error.constraints)[0] };
  if (error.children?.length) return firstProblem(error.children, `${field}.`);
  return { field, problem: `${field} is invalid` };
}

/**
 * Nest's ValidationPipe for inbound frames: the frame becomes an instance of its `@OnFrame` DTO, and
 * the first problem becomes `invalid_message` naming its field. Frame parameters are 'custom' ones
 * (see FrameParamtype), hence `validateCustomDecorators`; of those only the frame is validated (the
 * socket and the connection id have nothing to validate).
 */
export class FrameValidationPipe extends ValidationPipe {
  constructor() {
    super({
      transform: true,
      validateCustomDecorators: true,
      forbidUnknownValues: false,
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => {
        const { field, problem } = firstProblem(errors);
        return new AppError('invalid_message', `${field}: ${problem}`, { field });
      },
    });
  }

  protected override toValidate(metadata: ArgumentMetadata): boolean {
    return metadata.data === FRAME_PARAM && super.toValidate(metadata);
  }
}
