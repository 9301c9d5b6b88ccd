//! Integration tests: the whole application over real HTTP, on a fresh database per test.
//! SQLite by default; PostgreSQL when `TEST_DATABASE_URL` is set (see README).

mod accounts;
mod admin;
mod auth;
mod backup;
mod bookings;
mod browser;
mod cli;
mod crash;
mod discovery;
mod events;
mod external_oidc;
mod helpers;
mod messaging;
mod microservices;
mod notifications;
mod observability;
mod organizers;
mod outage;
mod payments;
mod platform;
mod recaptcha;
mod tls;
mod web;
