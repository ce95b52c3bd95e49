/**
 * The mock validates requests with the oas-validation plugin's validator
 * (validation/request.ts): path, query, header and cookie parameters, the
 * Content-Type and the body. Credentials are not checked: behind a gateway
 * the authentication plugins have already checked (and may have removed)
 * them. Violations of the body alone → 422, any other → 400.
 */
import type { OpenApiDocument } from './document.ts';
import type { MockValidator } from './mock.ts';
import { RequestValidator, type RequestView } from './validation/request.ts';
import type { Violation } from './validation/violations.ts';

export function requestValidator(doc: OpenApiDocument): MockValidator {
  const validator = new RequestValidator(doc, { security: false });
  return async (op, req) => {
    const m = validator.match(op.method, req.path);
    if ('violation' in m) return { status: 400, violations: [m.violation] };
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    const view: RequestView = { rawQuery: req.rawQuery, header, headerNames: () => Object.keys(req.headers), clientCertificate: false };
    const violations: Violation[] = validator.validateParameters(m.operation, m.pathParams, view);
    const contentType = header('content-type');
    const plan = validator.planBody(m.operation, contentType, req.body.length > 0);
    violations.push(...plan.violations);
    if (plan.entry) violations.push(...(await validator.validateBody(m.operation, plan.entry, req.body, contentType)));
    if (violations.length === 0) return null;
    return { status: violations.every((v) => v.in === 'body') ? 422 : 400, violations };
  };
}
