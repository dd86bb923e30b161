<?php
/*
 * gatewatch.php: the Diagnostics > gatewatch menu entry. gatewatch serves its own web UI
 * (with its own login); this page sends the browser there, on the host name the pfSense
 * GUI was reached by.
 */
require_once("guiconfig.inc");
require_once("/usr/local/pkg/gatewatch.inc");

$host = parse_url("https://" . $_SERVER['HTTP_HOST'], PHP_URL_HOST);
if (strpos($host, ":") !== false && $host[0] !== "[") {
	$host = "[" . $host . "]";
}
header("Location: https://" . $host . ":" . gatewatch_web_port() . "/");
exit;
