import type { IncomingHttpHeaders } from 'node:http';
import { RingmasterError } from '../lib/errors.ts';

// Cross-site request refusal for the admin listener. A browser that holds a client certificate
// ringmaster trusts (an operator's pp_cli_auth certificate) presents it to any page that makes it
// send a request here, the way it sends cookies: a form on another site could drain a member.
// Browsers mark such requests (Sec-Fetch-Site, Origin), and a form can only send
// text/plain, urlencoded or multipart bodies; the CLI, curl and automation send none of these.
// So a request that changes something is refused when a browser says it comes from elsewhere.

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);
const formTypes = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

export function refuseCrossSite(method: string, headers: IncomingHttpHeaders): void {
  if (safeMethods.has(method)) return;
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw refusal(`the browser marked this ${method} as ${site} (Sec-Fetch-Site); only the dashboard served here may change things`);
  }
  const origin = headers.origin;
  if (origin !== undefined && origin !== `https://${headers.host ?? ''}`) {
    throw refusal(`a ${method} from origin ${origin} is refused; only the dashboard served here (https://${headers.host ?? ''}) may change things`);
  }
  const type = (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (formTypes.has(type)) throw refusal(`a ${method} with Content-Type ${type} is refused: send JSON (application/json) or no body`);
}

function refusal(message: string): RingmasterError {
  return new RingmasterError('RM_ADMIN_CROSS_SITE', message);
}
