import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema';

export type SmartDukaClient = Client<paths>;

export interface SmartDukaClientOptions extends Omit<ClientOptions, 'baseUrl'> {
  /** API origin, e.g. http://localhost:3000 */
  baseUrl: string;
  /** POS JWT (cashier/manager/admin); sent as `Authorization: Bearer <token>`. */
  token?: string | (() => string | undefined);
}

/** A typed client over openapi-fetch: `client.GET('/payments/{id}', { params: { path: { id } } })`. */
export function createSmartDukaClient({ token, headers, ...options }: SmartDukaClientOptions): SmartDukaClient {
  const client = createClient<paths>({ ...options, headers });
  if (token !== undefined) {
    client.use({
      onRequest({ request }) {
        const value = typeof token === 'function' ? token() : token;
        if (value && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${value}`);
        return request;
      },
    });
  }
  return client;
}
