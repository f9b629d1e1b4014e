// Renders /api/openapi.json with Swagger UI: a file of its own, since the
// docs' CSP runs no inline script.  No validator badge (it would ask
// validator.swagger.io), nothing loaded from elsewhere.
window.ui = SwaggerUIBundle({
  url: '/api/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
