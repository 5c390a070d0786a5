/**
 * templates: confd-style files rendered from the registry and configuration, checked, swapped in
 * atomically, followed by a reload command. The language itself is pure and lives in core/template.ts.
 */
export { TemplateRenderer, type TemplateSources } from './template-renderer.ts';
