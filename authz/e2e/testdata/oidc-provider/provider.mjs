// A real OpenID provider (node-oidc-provider) that issues DPoP-bound JWT
// access tokens by client credentials, for tokenwise's acceptance test
// (oidcprovider_test.go). It listens on a free loopback port and prints
// "listening <issuer>" once it serves.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    scopes: ['orders:read'],
    clients: [{
      client_id: 'svc',
      client_secret: 'acceptance-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'orders:read',
    }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://api.example.com',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'orders:read', audience: 'orders-api', accessTokenFormat: 'jwt' }),
      },
    },
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
