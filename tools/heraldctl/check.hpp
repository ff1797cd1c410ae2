// `heraldctl check dns DOMAIN` and `heraldctl check certs`: the federation set-up as an
// operator sees it. Each prints its findings on standard output, ends with a one-line
// verdict, and returns the exit status (0 all good, 1 a problem was found).
#pragma once

#include <string>

#include "server/core/config/config.hpp"

namespace herald::heraldctl {

// Looks DOMAIN up like Herald does (the configured DNS servers and timeouts), connects to
// every address of every target as Herald would (STARTTLS or direct TLS, SNI = DOMAIN, at
// most [federation] connect_timeout each) and checks the certificate each presents.
// `domain` is a prepared JID domainpart.
int check_dns(const config::Config& cfg, const std::string& domain);

// Loads the certificate chain and key of every [[host]] and checks them.
int check_certs(const config::Config& cfg);

}  // namespace herald::heraldctl
