import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BuildkitProgressPrinter, TraceDecodeError, decodeStatusResponse, decodeTrace, formatBytes } from './buildkit-trace.ts';

/**
 * Captured from dockerd 20.10.24 (API 1.41, its built-in BuildKit): `POST /build?version=2` of
 *
 *     FROM berth/busybox
 *     WORKDIR /app
 *     COPY a.txt ./
 *     RUN echo out-line && echo err-line >&2 && printf 'partial' && sleep 0.2 && echo ' end' && echo 'héllo ✓'
 *
 * rebuilt after a.txt changed (so WORKDIR is cached): the `aux` of every `moby.buildkit.trace` line.
 */
const REBUILD = [
  'Cm8KR3NoYTI1Njo5NzZiZTYxZGNhMTZkMTAxNGI3MDlhZmY0YjIwNmNkMWFiZjE0NjhkNzk1OTlkMjc2MTkzZTUxYzBhZmJjNzk2GiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQ=',
  'CnwKR3NoYTI1Njo5NzZiZTYxZGNhMTZkMTAxNGI3MDlhZmY0YjIwNmNkMWFiZjE0NjhkNzk1OTlkMjc2MTkzZTUxYzBhZmJjNzk2GiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQqCwipw7PYBhDzoMRt',
  'CokBCkdzaGEyNTY6OTc2YmU2MWRjYTE2ZDEwMTRiNzA5YWZmNGIyMDZjZDFhYmYxNDY4ZDc5NTk5ZDI3NjE5M2U1MWMwYWZiYzc5NhokW2ludGVybmFsXSBsb2FkIHJlbW90ZSBidWlsZCBjb250ZXh0KgsIqcOz2AYQ86DEbTILCKnDs9gGENeUqXU=',
  'CokBCkdzaGEyNTY6OTc2YmU2MWRjYTE2ZDEwMTRiNzA5YWZmNGIyMDZjZDFhYmYxNDY4ZDc5NTk5ZDI3NjE5M2U1MWMwYWZiYzc5NhokW2ludGVybmFsXSBsb2FkIHJlbW90ZSBidWlsZCBjb250ZXh0KgsIqcOz2AYQkoe3dTILCKnDs9gGELjWt3U=',
  'CqMBCkdzaGEyNTY6ODFlYmI0NDU0MGZlMmY5OGZmODhkMjE2NTU3YTkyNTU0OTgxZGM4YzIzMjRlYzYyZGFiZjUzZmYzYzk4MTlkYxJHc2hhMjU2Ojk3NmJlNjFkY2ExNmQxMDE0YjcwOWFmZjRiMjA2Y2QxYWJmMTQ2OGQ3OTU5OWQyNzYxOTNlNTFjMGFmYmM3OTYaD2NvcHkgL2NvbnRleHQgLw==',
  'CrABCkdzaGEyNTY6ODFlYmI0NDU0MGZlMmY5OGZmODhkMjE2NTU3YTkyNTU0OTgxZGM4YzIzMjRlYzYyZGFiZjUzZmYzYzk4MTlkYxJHc2hhMjU2Ojk3NmJlNjFkY2ExNmQxMDE0YjcwOWFmZjRiMjA2Y2QxYWJmMTQ2OGQ3OTU5OWQyNzYxOTNlNTFjMGFmYmM3OTYaD2NvcHkgL2NvbnRleHQgLyoLCKnDs9gGEPOEvnc=',
  'Cr4BCkdzaGEyNTY6ODFlYmI0NDU0MGZlMmY5OGZmODhkMjE2NTU3YTkyNTU0OTgxZGM4YzIzMjRlYzYyZGFiZjUzZmYzYzk4MTlkYxJHc2hhMjU2Ojk3NmJlNjFkY2ExNmQxMDE0YjcwOWFmZjRiMjA2Y2QxYWJmMTQ2OGQ3OTU5OWQyNzYxOTNlNTFjMGFmYmM3OTYaD2NvcHkgL2NvbnRleHQgLyoLCKnDs9gGEPOEvncyDAipw7PYBhDAucKxAQ==',
  'CpQBCkdzaGEyNTY6ZjAxMmQ1NjUxYWFmNWY3ZGQxNTUzMWEzOTQ1YjhhMTQzN2IwYzRiZjc5YTM1YjcwZWUyZWNjYTk4MGRiMTJlNBo7W2ludGVybmFsXSBsb2FkIG1ldGFkYXRhIGZvciBkb2NrZXIuaW8vYmVydGgvYnVzeWJveDpsYXRlc3QqDAipw7PYBhDCzKC5AQ==',
  'CqIBCkdzaGEyNTY6ZjAxMmQ1NjUxYWFmNWY3ZGQxNTUzMWEzOTQ1YjhhMTQzN2IwYzRiZjc5YTM1YjcwZWUyZWNjYTk4MGRiMTJlNBo7W2ludGVybmFsXSBsb2FkIG1ldGFkYXRhIGZvciBkb2NrZXIuaW8vYmVydGgvYnVzeWJveDpsYXRlc3QqDAipw7PYBhDCzKC5ATIMCKnDs9gGEOGxv7kB',
  'CqYBCkdzaGEyNTY6NzliNmM2NGNlOWI5ZWVmMjNiMGYxMmQ5MjJkZWZlNjEwMGJmMWYxOTlkNGQ0YjI3NTRhZDZlNTU1Y2I5YWYzMxJHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaElsyLzRdIFdPUktESVIgL2FwcArwAQpHc2hhMjU2Ojk1ZjhhNGMxMzljNWRmNjUyZTY5MjQyY2EwZGM3MTQ5NTJjN2ZmYjhhNzEzMGUxNDQzMGM1OWVhOWQyNGRlMmMSR3NoYTI1Njo3OWI2YzY0Y2U5YjllZWYyM2IwZjEyZDkyMmRlZmU2MTAwYmYxZjE5OWQ0ZDRiMjc1NGFkNmU1NTVjYjlhZjMzEkdzaGEyNTY6ODFlYmI0NDU0MGZlMmY5OGZmODhkMjE2NTU3YTkyNTU0OTgxZGM4YzIzMjRlYzYyZGFiZjUzZmYzYzk4MTlkYxoTWzMvNF0gQ09QWSBhLnR4dCAuLwqFAgpHc2hhMjU2OjVjYWUyMTEzNmY0MTMzZThmYTUzNmM1YTEwNjg2YjY0MjgyZGYwYzJhNTlhNzc3NDNlMzA5OTFhYmRhMGNmZjcSR3NoYTI1Njo5NWY4YTRjMTM5YzVkZjY1MmU2OTI0MmNhMGRjNzE0OTUyYzdmZmI4YTcxMzBlMTQ0MzBjNTllYTlkMjRkZTJjGnFbNC80XSBSVU4gZWNobyBvdXQtbGluZSAmJiBlY2hvIGVyci1saW5lID4mMiAmJiBwcmludGYgJ3BhcnRpYWwnICYmIHNsZWVwIDAuMiAmJiBlY2hvICcgZW5kJyAmJiBlY2hvICdow6lsbG8g4pyTJwqJAQpHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaIlsxLzRdIEZST00gZG9ja2VyLmlvL2JlcnRoL2J1c3lib3gqDAipw7PYBhCrjJS6ATIMCKnDs9gGEM7BoLoB',
  'CsQBCkdzaGEyNTY6NzliNmM2NGNlOWI5ZWVmMjNiMGYxMmQ5MjJkZWZlNjEwMGJmMWYxOTlkNGQ0YjI3NTRhZDZlNTU1Y2I5YWYzMxJHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaElsyLzRdIFdPUktESVIgL2FwcCABKgwIqcOz2AYQlf7VuwEyDAipw7PYBhDu1di7AQr+AQpHc2hhMjU2Ojk1ZjhhNGMxMzljNWRmNjUyZTY5MjQyY2EwZGM3MTQ5NTJjN2ZmYjhhNzEzMGUxNDQzMGM1OWVhOWQyNGRlMmMSR3NoYTI1Njo3OWI2YzY0Y2U5YjllZWYyM2IwZjEyZDkyMmRlZmU2MTAwYmYxZjE5OWQ0ZDRiMjc1NGFkNmU1NTVjYjlhZjMzEkdzaGEyNTY6ODFlYmI0NDU0MGZlMmY5OGZmODhkMjE2NTU3YTkyNTU0OTgxZGM4YzIzMjRlYzYyZGFiZjUzZmYzYzk4MTlkYxoTWzMvNF0gQ09QWSBhLnR4dCAuLyoMCKnDs9gGEPaY4bsB',
  'CowCCkdzaGEyNTY6OTVmOGE0YzEzOWM1ZGY2NTJlNjkyNDJjYTBkYzcxNDk1MmM3ZmZiOGE3MTMwZTE0NDMwYzU5ZWE5ZDI0ZGUyYxJHc2hhMjU2Ojc5YjZjNjRjZTliOWVlZjIzYjBmMTJkOTIyZGVmZTYxMDBiZjFmMTk5ZDRkNGIyNzU0YWQ2ZTU1NWNiOWFmMzMSR3NoYTI1Njo4MWViYjQ0NTQwZmUyZjk4ZmY4OGQyMTY1NTdhOTI1NTQ5ODFkYzhjMjMyNGVjNjJkYWJmNTNmZjNjOTgxOWRjGhNbMy80XSBDT1BZIGEudHh0IC4vKgwIqcOz2AYQ9pjhuwEyDAipw7PYBhDnlb7AAQ==',
  'CpMCCkdzaGEyNTY6NWNhZTIxMTM2ZjQxMzNlOGZhNTM2YzVhMTA2ODZiNjQyODJkZjBjMmE1OWE3Nzc0M2UzMDk5MWFiZGEwY2ZmNxJHc2hhMjU2Ojk1ZjhhNGMxMzljNWRmNjUyZTY5MjQyY2EwZGM3MTQ5NTJjN2ZmYjhhNzEzMGUxNDQzMGM1OWVhOWQyNGRlMmMacVs0LzRdIFJVTiBlY2hvIG91dC1saW5lICYmIGVjaG8gZXJyLWxpbmUgPiYyICYmIHByaW50ZiAncGFydGlhbCcgJiYgc2xlZXAgMC4yICYmIGVjaG8gJyBlbmQnICYmIGVjaG8gJ2jDqWxsbyDinJMnKgwIqcOz2AYQ7ouhwQE=',
  'GmQKR3NoYTI1Njo1Y2FlMjExMzZmNDEzM2U4ZmE1MzZjNWExMDY4NmI2NDI4MmRmMGMyYTU5YTc3NzQzZTMwOTkxYWJkYTBjZmY3EgwIqcOz2AYQ/dm88QEYASIJb3V0LWxpbmUK',
  'GmQKR3NoYTI1Njo1Y2FlMjExMzZmNDEzM2U4ZmE1MzZjNWExMDY4NmI2NDI4MmRmMGMyYTU5YTc3NzQzZTMwOTkxYWJkYTBjZmY3EgwIqcOz2AYQroHH8QEYAiIJZXJyLWxpbmUK',
  'GmIKR3NoYTI1Njo1Y2FlMjExMzZmNDEzM2U4ZmE1MzZjNWExMDY4NmI2NDI4MmRmMGMyYTU5YTc3NzQzZTMwOTkxYWJkYTBjZmY3EgwIqcOz2AYQ4a/k8QEYASIHcGFydGlhbA==',
  'GmsKR3NoYTI1Njo1Y2FlMjExMzZmNDEzM2U4ZmE1MzZjNWExMDY4NmI2NDI4MmRmMGMyYTU5YTc3NzQzZTMwOTkxYWJkYTBjZmY3EgwIqcOz2AYQucTb1QIYASIQIGVuZApow6lsbG8g4pyTCg==',
  'CqECCkdzaGEyNTY6NWNhZTIxMTM2ZjQxMzNlOGZhNTM2YzVhMTA2ODZiNjQyODJkZjBjMmE1OWE3Nzc0M2UzMDk5MWFiZGEwY2ZmNxJHc2hhMjU2Ojk1ZjhhNGMxMzljNWRmNjUyZTY5MjQyY2EwZGM3MTQ5NTJjN2ZmYjhhNzEzMGUxNDQzMGM1OWVhOWQyNGRlMmMacVs0LzRdIFJVTiBlY2hvIG91dC1saW5lICYmIGVjaG8gZXJyLWxpbmUgPiYyICYmIHByaW50ZiAncGFydGlhbCcgJiYgc2xlZXAgMC4yICYmIGVjaG8gJyBlbmQnICYmIGVjaG8gJ2jDqWxsbyDinJMnKgwIqcOz2AYQ7ouhwQEyDAipw7PYBhDT56DbAg==',
  'CmsKR3NoYTI1NjplOGM2MTNlMDdiMGI3ZmYzMzg5M2I2OTRmNzc1OWExMGQ0MmUxODBmMmI0ZGMzNDlmYjU3ZGM2YjcxZGNhYjAwGhJleHBvcnRpbmcgdG8gaW1hZ2UqDAipw7PYBhDozvLbAhJ3ChBleHBvcnRpbmcgbGF5ZXJzEkdzaGEyNTY6ZThjNjEzZTA3YjBiN2ZmMzM4OTNiNjk0Zjc3NTlhMTBkNDJlMTgwZjJiNGRjMzQ5ZmI1N2RjNmI3MWRjYWIwMDIMCKnDs9gGEKrs8tsCOgwIqcOz2AYQkery2wI=',
  'EoUBChBleHBvcnRpbmcgbGF5ZXJzEkdzaGEyNTY6ZThjNjEzZTA3YjBiN2ZmMzM4OTNiNjk0Zjc3NTlhMTBkNDJlMTgwZjJiNGRjMzQ5ZmI1N2RjNmI3MWRjYWIwMDIMCKnDs9gGEMWPqOICOgwIqcOz2AYQkery2wJCDAipw7PYBhDmg6jiAg==',
  'ErwBClV3cml0aW5nIGltYWdlIHNoYTI1Njo5NTQwMTQwYTJhNDgwNTJkMzVkMGU3NmNkZTJhNzQ1NDQxYjhjZWY1MTBjZDhiYzE0MWFmNjRhYzBjYjk4NzYxEkdzaGEyNTY6ZThjNjEzZTA3YjBiN2ZmMzM4OTNiNjk0Zjc3NTlhMTBkNDJlMTgwZjJiNGRjMzQ5ZmI1N2RjNmI3MWRjYWIwMDIMCKnDs9gGEIfc8OICOgwIqcOz2AYQg9rw4gI=',
  'EsoBClV3cml0aW5nIGltYWdlIHNoYTI1Njo5NTQwMTQwYTJhNDgwNTJkMzVkMGU3NmNkZTJhNzQ1NDQxYjhjZWY1MTBjZDhiYzE0MWFmNjRhYzBjYjk4NzYxEkdzaGEyNTY6ZThjNjEzZTA3YjBiN2ZmMzM4OTNiNjk0Zjc3NTlhMTBkNDJlMTgwZjJiNGRjMzQ5ZmI1N2RjNmI3MWRjYWIwMDIMCKnDs9gGEIeMuuMCOgwIqcOz2AYQg9rw4gJCDAipw7PYBhDtiLrjAhKPAQoobmFtaW5nIHRvIGRvY2tlci5pby9saWJyYXJ5L2JlcnRoLWNhcDp0MRJHc2hhMjU2OmU4YzYxM2UwN2IwYjdmZjMzODkzYjY5NGY3NzU5YTEwZDQyZTE4MGYyYjRkYzM0OWZiNTdkYzZiNzFkY2FiMDAyDAipw7PYBhCRv7zjAjoMCKnDs9gGEKC9vOMC',
  'CnkKR3NoYTI1NjplOGM2MTNlMDdiMGI3ZmYzMzg5M2I2OTRmNzc1OWExMGQ0MmUxODBmMmI0ZGMzNDlmYjU3ZGM2YjcxZGNhYjAwGhJleHBvcnRpbmcgdG8gaW1hZ2UqDAipw7PYBhDozvLbAjIMCKnDs9gGEJO6xOQCEp0BCihuYW1pbmcgdG8gZG9ja2VyLmlvL2xpYnJhcnkvYmVydGgtY2FwOnQxEkdzaGEyNTY6ZThjNjEzZTA3YjBiN2ZmMzM4OTNiNjk0Zjc3NTlhMTBkNDJlMTgwZjJiNGRjMzQ5ZmI1N2RjNmI3MWRjYWIwMDIMCKnDs9gGEK/awuQCOgwIqcOz2AYQoL284wJCDAipw7PYBhDr1sLkAg==',
];

/** The same daemon building `FROM berth/busybox` + `RUN echo about-to-fail && exit 7`. */
const FAILING = [
  'Cn0KR3NoYTI1NjozZWU1YTQzMTNhZGNhMWU0MTUxMzIxOTk5MTFmMWZmY2U1ODQxYjI3MTBlNDU1YjFlNzdiNDIwOTJhN2EyODI4GiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQqDAipw7PYBhDDiPjUAw==',
  'CosBCkdzaGEyNTY6M2VlNWE0MzEzYWRjYTFlNDE1MTMyMTk5OTExZjFmZmNlNTg0MWIyNzEwZTQ1NWIxZTc3YjQyMDkyYTdhMjgyOBokW2ludGVybmFsXSBsb2FkIHJlbW90ZSBidWlsZCBjb250ZXh0KgwIqcOz2AYQw4j41AMyDAipw7PYBhCix7XYAw==',
  'CosBCkdzaGEyNTY6M2VlNWE0MzEzYWRjYTFlNDE1MTMyMTk5OTExZjFmZmNlNTg0MWIyNzEwZTQ1NWIxZTc3YjQyMDkyYTdhMjgyOBokW2ludGVybmFsXSBsb2FkIHJlbW90ZSBidWlsZCBjb250ZXh0KgwIqcOz2AYQwPfG2AMyDAipw7PYBhCyhMjYAw==',
  'CqMBCkdzaGEyNTY6NWFiYzUyMzQ4YmZkMTE0NDI1MDJlNGQ0YzA1ODA1NzljMTk1MmE5YjhkYjI3NDA5ODVkNDUxMjQ1ZmU5M2ZjNhJHc2hhMjU2OjNlZTVhNDMxM2FkY2ExZTQxNTEzMjE5OTkxMWYxZmZjZTU4NDFiMjcxMGU0NTViMWU3N2I0MjA5MmE3YTI4MjgaD2NvcHkgL2NvbnRleHQgLw==',
  'CrEBCkdzaGEyNTY6NWFiYzUyMzQ4YmZkMTE0NDI1MDJlNGQ0YzA1ODA1NzljMTk1MmE5YjhkYjI3NDA5ODVkNDUxMjQ1ZmU5M2ZjNhJHc2hhMjU2OjNlZTVhNDMxM2FkY2ExZTQxNTEzMjE5OTkxMWYxZmZjZTU4NDFiMjcxMGU0NTViMWU3N2I0MjA5MmE3YTI4MjgaD2NvcHkgL2NvbnRleHQgLyoMCKnDs9gGEOyPntoD',
  'Cr4BCkdzaGEyNTY6NWFiYzUyMzQ4YmZkMTE0NDI1MDJlNGQ0YzA1ODA1NzljMTk1MmE5YjhkYjI3NDA5ODVkNDUxMjQ1ZmU5M2ZjNhJHc2hhMjU2OjNlZTVhNDMxM2FkY2ExZTQxNTEzMjE5OTkxMWYxZmZjZTU4NDFiMjcxMGU0NTViMWU3N2I0MjA5MmE3YTI4MjgaD2NvcHkgL2NvbnRleHQgLyoMCKnDs9gGEOyPntoDMgsIqsOz2AYQ7rfGOg==',
  'CpMBCkdzaGEyNTY6ZjAxMmQ1NjUxYWFmNWY3ZGQxNTUzMWEzOTQ1YjhhMTQzN2IwYzRiZjc5YTM1YjcwZWUyZWNjYTk4MGRiMTJlNBo7W2ludGVybmFsXSBsb2FkIG1ldGFkYXRhIGZvciBkb2NrZXIuaW8vYmVydGgvYnVzeWJveDpsYXRlc3QqCwiqw7PYBhCwzeZA',
  'CqABCkdzaGEyNTY6ZjAxMmQ1NjUxYWFmNWY3ZGQxNTUzMWEzOTQ1YjhhMTQzN2IwYzRiZjc5YTM1YjcwZWUyZWNjYTk4MGRiMTJlNBo7W2ludGVybmFsXSBsb2FkIG1ldGFkYXRhIGZvciBkb2NrZXIuaW8vYmVydGgvYnVzeWJveDpsYXRlc3QqCwiqw7PYBhCwzeZAMgsIqsOz2AYQ+qKXQQ==',
  'Cm0KR3NoYTI1Njo2MzBkNGM1ZWU3ZDdjYTUwNzRhN2Q1NzIzYmMwNGMzMmRkYWRkYTljNjI5MThjODIxMmM0N2FiNzUzMjUxMGQ1GiJbMS8yXSBGUk9NIGRvY2tlci5pby9iZXJ0aC9idXN5Ym94CroBCkdzaGEyNTY6Y2EwMjk0MWU4ZmQyNjlmNzBhZjAyOTFiZWQ3N2VkYzJiOWJmNzIzNjI5OTM5NGY2YTgzNmE0ZTc2NWNkZjRlYhJHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaJlsyLzJdIFJVTiBlY2hvIGFib3V0LXRvLWZhaWwgJiYgZXhpdCA3',
  'CokBCkdzaGEyNTY6NjMwZDRjNWVlN2Q3Y2E1MDc0YTdkNTcyM2JjMDRjMzJkZGFkZGE5YzYyOTE4YzgyMTJjNDdhYjc1MzI1MTBkNRoiWzEvMl0gRlJPTSBkb2NrZXIuaW8vYmVydGgvYnVzeWJveCABKgsIqsOz2AYQnPn9QTILCKrDs9gGEPTumEI=',
  'CscBCkdzaGEyNTY6Y2EwMjk0MWU4ZmQyNjlmNzBhZjAyOTFiZWQ3N2VkYzJiOWJmNzIzNjI5OTM5NGY2YTgzNmE0ZTc2NWNkZjRlYhJHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaJlsyLzJdIFJVTiBlY2hvIGFib3V0LXRvLWZhaWwgJiYgZXhpdCA3KgsIqsOz2AYQnLzjQw==',
  'GmgKR3NoYTI1NjpjYTAyOTQxZThmZDI2OWY3MGFmMDI5MWJlZDc3ZWRjMmI5YmY3MjM2Mjk5Mzk0ZjZhODM2YTRlNzY1Y2RmNGViEgsIqsOz2AYQjJbPcRgBIg5hYm91dC10by1mYWlsCg==',
  'CqUCCkdzaGEyNTY6Y2EwMjk0MWU4ZmQyNjlmNzBhZjAyOTFiZWQ3N2VkYzJiOWJmNzIzNjI5OTM5NGY2YTgzNmE0ZTc2NWNkZjRlYhJHc2hhMjU2OjYzMGQ0YzVlZTdkN2NhNTA3NGE3ZDU3MjNiYzA0YzMyZGRhZGRhOWM2MjkxOGM4MjEyYzQ3YWI3NTMyNTEwZDUaJlsyLzJdIFJVTiBlY2hvIGFib3V0LXRvLWZhaWwgJiYgZXhpdCA3KgsIqsOz2AYQnLzjQzILCKrDs9gGEJTc+Xc6T2V4ZWN1dG9yIGZhaWxlZCBydW5uaW5nIFsvYmluL3NoIC1jIGVjaG8gYWJvdXQtdG8tZmFpbCAmJiBleGl0IDddOiBleGl0IGNvZGU6IDc=',
];

function render(samples: string[]): string[] {
  const p = new BuildkitProgressPrinter();
  const out = samples.flatMap((s) => p.update(decodeTrace(s)));
  return [...out, ...p.end()];
}

// ---- a tiny protobuf encoder for synthetic messages ----
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const len = (field: number, bytes: Uint8Array | number[]): number[] => [...key(field, 2), ...varint(bytes.length), ...bytes];
const str = (field: number, s: string): number[] => len(field, [...Buffer.from(s, 'utf8')]);
const num = (field: number, n: number): number[] => [...key(field, 0), ...varint(n)];
const ts = (field: number, ms: number): number[] => len(field, [...num(1, Math.floor(ms / 1000)), ...num(2, (ms % 1000) * 1e6)]);
const msg = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());

test('decodes the vertexes, statuses and logs of a real trace', () => {
  const all = REBUILD.map(decodeTrace);
  const vertexes = all.flatMap((s) => s.vertexes);
  const run = vertexes.find((v) => v.name.startsWith('[4/4] RUN') && v.completed !== undefined);
  assert.ok(run);
  assert.match(run.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(run.cached, false);
  assert.equal(run.error, '');
  assert.ok(run.started !== undefined && run.completed !== undefined);
  assert.ok(run.completed >= run.started && run.completed - run.started < 5000, `${run.started} → ${run.completed}`);
  assert.ok(Math.abs(run.started - Date.UTC(2025, 0, 1)) < 5 * 365 * 86_400_000, 'a plausible date: seconds and nanos decoded');
  assert.ok(run.inputs.length >= 1 && run.inputs.every((i) => /^sha256:/.test(i)));

  const workdir = vertexes.filter((v) => v.name === '[2/4] WORKDIR /app');
  assert.ok(workdir.some((v) => v.cached));

  const logs = all.flatMap((s) => s.logs).filter((l) => l.vertex === run.digest);
  const text = logs.map((l) => Buffer.from(l.msg).toString('utf8')).join('');
  assert.match(text, /out-line\n/);
  assert.match(text, /héllo ✓/);
  assert.deepEqual([...new Set(logs.map((l) => l.stream))].sort(), [1, 2], 'stdout and stderr');

  const statuses = all.flatMap((s) => s.statuses);
  assert.ok(statuses.some((s) => s.id.startsWith('writing image sha256:') && s.completed !== undefined));
});

test('renders a real rebuild in the style of --progress=plain: names once, CACHED, output lines, DONE', () => {
  const lines = render(REBUILD);
  const names = lines.filter((l) => /^#\d+ \[\d\/4\] /.test(l));
  assert.deepEqual(names.map((l) => l.replace(/^#\d+ /, '')), [
    '[1/4] FROM docker.io/berth/busybox',
    '[2/4] WORKDIR /app',
    '[3/4] COPY a.txt ./',
    "[4/4] RUN echo out-line && echo err-line >&2 && printf 'partial' && sleep 0.2 && echo ' end' && echo 'héllo ✓'",
  ]);
  const numOf = (name: string): string => /^(#\d+) /.exec(lines.find((l) => l.includes(name))!)![1]!;
  const workdir = numOf('WORKDIR /app');
  const copy = numOf('COPY a.txt');
  const run = numOf('[4/4] RUN');
  assert.ok(lines.includes(`${workdir} CACHED`), lines.join('\n'));
  assert.ok(!lines.includes(`${copy} CACHED`) && lines.some((l) => new RegExp(`^${copy} DONE \\d+\\.\\d+s$`).test(l)));
  // Output: one line per line of output, stamped with seconds since the step started; a line written
  // in two pieces (printf 'partial' ... echo ' end') is one line.
  const out = lines.filter((l) => l.startsWith(`${run} `) && /^#\d+ \d+\.\d{3} /.test(l)).map((l) => l.replace(/^#\d+ \d+\.\d{3} /, ''));
  assert.deepEqual([...out].sort(), ['err-line', 'héllo ✓', 'out-line', 'partial end']);
  assert.match(lines.at(-1)!, /^#\d+ DONE \d+\.\d+s$/);
  assert.ok(lines.some((l) => /^#\d+ writing image sha256:[0-9a-f]{64} done$/.test(l)));
  // Numbered in the order they print, each name once.
  const headerNums = lines.filter((l) => /^#\d+ [^\d]/.test(l) && !/ (DONE|CACHED|ERROR)/.test(l) && !/ done$/.test(l)).map((l) => Number(/^#(\d+)/.exec(l)![1]));
  assert.deepEqual(headerNums, headerNums.map((_, i) => i + 1));
});

test('renders a real failing build: the output, then ERROR with the reason', () => {
  assert.deepEqual(render(FAILING), [
    '#1 [internal] load remote build context',
    '#1 DONE 0.0s',
    '#2 copy /context /',
    '#2 DONE 0.1s',
    '#3 [internal] load metadata for docker.io/berth/busybox:latest',
    '#3 DONE 0.0s',
    '#4 [1/2] FROM docker.io/berth/busybox',
    '#4 CACHED',
    '#5 [2/2] RUN echo about-to-fail && exit 7',
    '#5 0.096 about-to-fail',
    '#5 ERROR: executor failed running [/bin/sh -c echo about-to-fail && exit 7]: exit code: 7',
  ]);
});

test('a character split across two log messages, and output without a final newline', () => {
  const v = 'sha256:aaaa';
  const started = 1_700_000_000_000;
  const p = new BuildkitProgressPrinter();
  const check = Buffer.from('✓', 'utf8');
  const lines = [
    ...p.update(decodeStatusResponse(msg(len(1, msg(str(1, v), str(3, '[1/1] RUN x'), ts(5, started)))))),
    ...p.update(decodeStatusResponse(msg(len(3, msg(str(1, v), ts(2, started + 1500), num(3, 1), len(4, [0x61, check[0]!])))))),
    ...p.update(decodeStatusResponse(msg(len(3, msg(str(1, v), ts(2, started + 1600), num(3, 1), len(4, [check[1]!, check[2]!, 0x0a, 0x62])))))),
    ...p.end(),
  ];
  assert.deepEqual(lines, ['#1 [1/1] RUN x', '#1 1.500 a✓', '#1 1.600 b']);
});

test('unknown fields of every wire type are skipped; cancelled and warnings print', () => {
  const v = 'sha256:bbbb';
  const unknown = [...key(99, 0), ...varint(2 ** 40), ...key(98, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...key(97, 5), 1, 2, 3, 4, ...str(96, 'x')];
  const status = decodeStatusResponse(
    msg(
      unknown,
      len(1, msg(str(1, v), unknown, str(3, '[2/3] RUN sleep 30'), num(4, 0), ts(5, 1000), ts(6, 3500), str(7, 'process killed: context canceled'), len(8, msg(str(1, 'g'))))),
      len(4, msg(str(1, v), num(2, 1), str(3, 'something odd'))),
    ),
  );
  assert.equal(status.vertexes.length, 1);
  assert.equal(status.vertexes[0]?.name, '[2/3] RUN sleep 30');
  assert.equal(status.vertexes[0]?.completed, 3500);
  assert.equal(status.warnings[0]?.short, 'something odd');
  assert.deepEqual(new BuildkitProgressPrinter().update(status), ['#1 [2/3] RUN sleep 30', '#1 WARNING: something odd', '#1 CANCELED']);
});

test('a status prints once, when it completes, with its size and time', () => {
  const v = 'sha256:cccc';
  const p = new BuildkitProgressPrinter();
  const tick = (current: number, done: boolean): string[] =>
    p.update(decodeStatusResponse(msg(len(1, msg(str(1, v), str(3, '[internal] load build context'), ts(5, 0))), len(2, msg(str(1, 'transferring context'), str(2, v), num(4, current), ts(7, 0), ...(done ? [ts(8, 1200)] : []))))));
  assert.deepEqual(tick(1000, false), ['#1 [internal] load build context']);
  assert.deepEqual(tick(2_110, true), ['#1 transferring context 2.11kB 1.2s done']);
  assert.deepEqual(tick(2_110, true), []);
});

test('malformed input is a TraceDecodeError, not a crash or a silent half-message', () => {
  const good = Buffer.from(REBUILD[0]!, 'base64');
  assert.throws(() => decodeStatusResponse(good.subarray(0, good.length - 3)), TraceDecodeError);
  assert.throws(() => decodeStatusResponse(Uint8Array.from([0x0b])), TraceDecodeError, 'wire type 3 (groups)');
  assert.throws(() => decodeStatusResponse(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), TraceDecodeError);
  assert.deepEqual(decodeStatusResponse(new Uint8Array(0)), { vertexes: [], statuses: [], logs: [], warnings: [] });
});

test('formatBytes prints decimal units like BuildKit', () => {
  assert.equal(formatBytes(37), '37B');
  assert.equal(formatBytes(2_110), '2.11kB');
  assert.equal(formatBytes(107_100_000), '107.10MB');
});
