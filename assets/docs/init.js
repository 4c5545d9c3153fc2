// Starts Swagger UI on this service's own /openapi.json. Paths are relative to /docs, so the
// page also works behind a proxy that mounts the service under a prefix.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    // "Try it out" is open on every operation: the point of the page is to send requests.
    tryItOutEnabled: true,
    displayRequestDuration: true,
    // The key typed into "Authorize" lives in this tab only, never in storage.
    persistAuthorization: false,
    // No third-party validator badge: the page talks to this service and nothing else.
    validatorUrl: null,
  });
});
