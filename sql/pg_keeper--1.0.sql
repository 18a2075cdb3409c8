/* pg_keeper--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_keeper" to load this file. \quit

-- The keeper itself needs no SQL objects: it runs from
-- shared_preload_libraries. This version creates only the schema that the
-- status functions will live in.
