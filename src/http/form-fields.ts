/** The text fields of a form body; a body that is not a form simply has none. */
export async function formFields(request: Request): Promise<Map<string, string>> {
  const fields = new Map<string, string>()
  try {
    for (const [name, value] of await request.formData()) if (typeof value === 'string') fields.set(name, value)
  } catch {
    // Not a form: no fields.
  }
  return fields
}
