package engineio

// PollerRegistrations counts the websocket readers registered with the
// Linux pollers (always 0 elsewhere).
var PollerRegistrations = pollerRegistrations
