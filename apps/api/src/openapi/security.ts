import type { INestApplication, Type } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import type { AppConfig } from '../config/app-config';

/** The name addBearerAuth() gives the JWT scheme in components.securitySchemes. */
export const BEARER_SCHEME = 'bearer';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

function guardedByJwt(guards: unknown): boolean {
  return (
    Array.isArray(guards) &&
    guards.some((g) => g === JwtAuthGuard || (typeof g === 'function' && g.prototype instanceof JwtAuthGuard))
  );
}

/**
 * For every route handler of every controller, keyed as @nestjs/swagger's default operationId
 * (`<Controller>_<method>`): whether JwtAuthGuard guards it (on the class or on the method).
 */
export function jwtGuardedHandlers(app: INestApplication): Map<string, boolean> {
  const handlers = new Map<string, boolean>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type | null;
      if (!controller?.prototype) continue;
      const onClass = guardedByJwt(Reflect.getMetadata(GUARDS_METADATA, controller));
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler: unknown = Object.getOwnPropertyDescriptor(controller.prototype, name)?.value;
        if (typeof handler !== 'function' || name === 'constructor') continue;
        if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
        if (Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
        handlers.set(
          `${controller.name}_${name}`,
          onClass || guardedByJwt(Reflect.getMetadata(GUARDS_METADATA, handler)),
        );
      }
    }
  }
  return handlers;
}

/**
 * Sets `security` on every operation from the guards that really run: the bearer JWT where
 * JwtAuthGuard guards the handler, `[]` (public: callbacks, webhooks, hosted-page returns, health)
 * everywhere else. An operation that cannot be traced back to its handler (a custom operationId)
 * stops the export rather than being documented wrongly.
 */
export function applyGuardSecurity(document: OpenAPIObject, app: INestApplication): OpenAPIObject {
  const guarded = jwtGuardedHandlers(app);
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation) continue;
      // An alias route (several paths on one handler) gets `<handler>[<n>]`.
      const key = operation.operationId?.replace(/\[\d+\]$/, '');
      const jwt = key === undefined ? undefined : guarded.get(key);
      if (jwt === undefined)
        throw new Error(
          `OpenAPI: ${method.toUpperCase()} ${path} (operationId ${operation.operationId}) matches no controller handler`,
        );
      operation.security = jwt ? [{ [BEARER_SCHEME]: [] }] : [];
    }
  }
  return document;
}

/**
 * The document's `servers`: the API's public address (PUBLIC_BASE_URL); without one (the config
 * then falls back to 127.0.0.1 on PORT), or with no config at all, the local dev server.
 */
export function openApiServers(
  config: Pick<AppConfig, 'publicBaseUrl' | 'port'> | undefined,
): NonNullable<OpenAPIObject['servers']> {
  if (config && config.publicBaseUrl !== `http://127.0.0.1:${config.port}`)
    return [{ url: config.publicBaseUrl, description: 'This API (PUBLIC_BASE_URL)' }];
  return [{ url: `http://localhost:${config?.port ?? 3000}`, description: 'Local development server (`pnpm dev`)' }];
}
