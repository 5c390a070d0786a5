import { parseAppSpec } from './src/core/spec/index.ts';
import { InvalidSpec } from './src/core/errors.ts';
const cases: Record<string,string> = {
 empty: '',
 comment: '# nothing\n',
 list: '- a\n- b\n',
 nullservices: 'services:\n',
 nullweb: 'services:\n  web:\n',
 noimage: 'services:\n  web:\n    command: x\n',
 names: 'name: My_App\nservices:\n  my_web:\n    image: x\n  Web2:\n    image: y\n',
 xb: 'services:\n  web:\n    image: x\n    x-berth:\n      prot: 80\n      routes: [a.com]\n      health: {http: {path: healthz, intervl: 1s}}\n',
 xb2: 'x-berth:\n  ap: x\nservices:\n  web:\n    image: x\n    x-berth:\n      port: 99999\n      health: {tcp: true}\n',
 vols: 'services:\n  web:\n    image: x\n    volumes:\n      - data:/data\n      - /etc:/etc\n      - ./ok:/ok\n      - ../../x:/x\n      - /anon\n      - data2:rel\n',
 cycle: 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: {a: {condition: service_healthy}}\n  c:\n    image: x\n    depends_on: [c]\n',
 routes: 'services:\n  a:\n    image: x\n    x-berth: {port: 1, routes: [ex.com/api]}\n  b:\n    image: x\n    x-berth: {port: 2, routes: [{host: EX.com, path: /api}, "http://x.com/", "bad host/x", {path: api}]}\n',
 units: 'services:\n  a:\n    image: x\n    stop_grace_period: 10 seconds\n    shm_size: lots\n    healthcheck: {test: [curl, x], interval: 0s, retries: many}\n    deploy: {resources: {limits: {cpus: -1, memory: 1q}}, restart_policy: {condition: sometimes}}\n    restart: maybe\n    scale: 2\n',
 types: 'services:\n  a:\n    image: [x]\n    environment: 5\n    command: {a: 1}\n    depends_on: {db: {condition: bogus}}\n    volumes: [{source: x}]\n    healthcheck: {interval: 10}\n  db:\n    image: x\n',
 dup: 'services:\n  a:\n    image: x\n    image: y\n',
 ports: 'services:\n  a:\n    image: x\n    ports: ["8080:80/tcp", {target: 90, published: 9090, host_ip: 127.0.0.1, protocol: udp}, 7000]\n    expose: ["80"]\n    cpus: 1\n    deploy: {mode: global, resources: {reservations: {cpus: 1}, limits: {pids: 4}}, update_config: {parallelism: 1}}\n    x-bert: {}\n    x-other: 1\n    build: {context: ., target: prod, args: [A=1, B]}\n    labels: {ok: 1}\n    env_file: [{path: missing.env, required: false}]\n    command: "sh -c \'echo $$HOME\'"\n',
 interp: 'services:\n  a:\n    image: "x:${TAG}"\n    command: echo $1 and $\n    environment:\n      - A=${A:-${B:-dflt}}\n      - C=${UNSET_C}\n      - D=$${NOT}\n      - E=${E-x}\n      - F=${F+set}\n      - G=${1BAD}\n      - H=${H BAD}\n',
 interp2: 'services:\n  a:\n    image: "x:${TAG}"\n    environment:\n      - A=${A:-${B:-dflt}}\n      - C=${UNSET_C}\n      - D=$${NOT}\n      - E=${E-x}\n      - F=${F+set}\n      - G=${F:-empty}\n      - H=${F-notused}\n',
 merge: 'x-d: &d\n  networks: [x]\n  deploy: {replicas: two}\nservices:\n  a:\n    <<: *d\n    image: x\n',
 badyaml: 'services:\n  a: [\n',
 multidoc: 'services: {}\n---\nx: 1\n',
 tabs: 'services:\n\ta: 1\n',
};
for (const [name, text] of Object.entries(cases)) {
  console.log('==', name);
  try {
    const r = parseAppSpec(text, { file: 'c.yaml', env: { HOME: '/root', F: '' }, baseDir: '/srv/apps/demo', allowedBindRoots: ['/srv/apps/demo'], readFile: () => undefined });
    for (const w of r.warnings) console.log('  W', `${w.line}:${w.col}`, w.path, '-', w.message);
    console.log('  OK', JSON.stringify(Object.values(r.spec.services).map(s => [s.name, s.image, s.environment, s.ports, s.command, s.volumes, s.build])));
  } catch (e) { if (e instanceof InvalidSpec) console.log(e.message.split('\n').map(l => '  E ' + l).join('\n')); else throw e; }
}
